"""The served application as the server loads it."""

from __future__ import annotations

import gc
import importlib
import sys

from tests.test_settings import run_django


def test_loading_the_application_moves_what_it_loaded_out_of_the_collectors_sight() -> None:
    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    importlib.reload(importlib.import_module("config.asgi"))
    assert gc.get_freeze_count() > 10_000  # Django, the app and the libraries


def test_loading_the_application_lets_the_event_loop_take_the_gil_back_within_a_millisecond(
    settings,
) -> None:
    before = sys.getswitchinterval()
    try:
        settings.LIAISON_GIL_SWITCH_MS = 1
        sys.setswitchinterval(0.005)
        importlib.reload(importlib.import_module("config.asgi"))
        assert sys.getswitchinterval() == 0.001
    finally:
        sys.setswitchinterval(before)


def test_a_switch_interval_under_a_millisecond_is_refused_by_name() -> None:
    result = run_django("print('started')", LIAISON_GIL_SWITCH_MS="0")
    assert result.returncode != 0
    assert "LIAISON_GIL_SWITCH_MS must be at least 1" in result.stderr
