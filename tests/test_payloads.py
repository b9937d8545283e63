"""Outgoing JSON shapes: the one time format, and shapes that stay clear of the write paths."""

from __future__ import annotations

import ast
import datetime as dt
import zoneinfo
from pathlib import Path

import pytest

from liaison import payloads

LIAISON = Path(payloads.__file__).parent.parent


def test_times_leave_in_utc_with_a_z() -> None:
    shanghai = dt.datetime(2026, 7, 1, 16, 0, tzinfo=zoneinfo.ZoneInfo("Asia/Shanghai"))
    assert payloads.iso_utc(shanghai) == "2026-07-01T08:00:00Z"


def test_message_times_always_carry_milliseconds() -> None:
    whole_second = dt.datetime(2026, 7, 1, 9, 15, 2, tzinfo=dt.UTC)
    precise = dt.datetime(2026, 7, 1, 9, 15, 2, 125_999, tzinfo=dt.UTC)
    assert payloads.iso_utc(whole_second, timespec="milliseconds") == "2026-07-01T09:15:02.000Z"
    assert payloads.iso_utc(precise, timespec="milliseconds") == "2026-07-01T09:15:02.125Z"


def test_a_missing_time_stays_null() -> None:
    assert payloads.iso_utc(None) is None


def _imported_names(source: str) -> list[str]:
    """Every name an import statement brings in, fully qualified."""
    names: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names += [f"{node.module}.{alias.name}" for alias in node.names]
    return names


@pytest.mark.parametrize("module", ["payloads/__init__.py", "selectors.py"])
def test_shapes_and_reads_import_no_service(module: str) -> None:
    imported = _imported_names((LIAISON / module).read_text())
    assert "liaison.models.Message" in imported  # the walk sees the module's imports
    assert [name for name in imported if name.startswith("liaison.services")] == []
