"""Comparison results downloaded as CSV or XLSX, every download on record."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils.translation import gettext as _

from liaison import access, audit
from liaison.errors import (
    Conflict,
    Invalid,
)
from liaison.exchange import comparison as compare
from liaison.exchange import export
from liaison.models import (
    ComparisonKind,
    ComparisonStatus,
    User,
)
from liaison.services.exchange.results import ComparisonRun, result_document


@dataclass(frozen=True)
class ResultFile:
    filename: str
    content_type: str
    data: bytes


def finished_document(run: ComparisonRun) -> dict[str, Any]:
    if run.document is None:
        raise Conflict(
            _("Comparison #%(id)s is still running.") % {"id": run.comparison.pk}
            if run.comparison.status == ComparisonStatus.RUNNING
            else _("Comparison #%(id)s failed and has no result.") % {"id": run.comparison.pk}
        )
    return run.document


def export_comparison(
    *,
    user: User,
    comparison_id: object,
    file_format: str,
    outcome: str = "",
    ip: str | None = None,
) -> ResultFile:
    """A comparison's result as CSV or XLSX (formulas neutralised), optionally one outcome's
    rows; every download is on record."""
    if file_format not in export.FORMATS:
        raise Invalid(_("format must be csv or xlsx."), field="format")
    comparison, _membership = access.access_comparison(user, comparison_id)
    document = finished_document(ComparisonRun(comparison, result_document(comparison)))
    rows = None
    if document["kind"] == ComparisonKind.MIRROR:
        rows = compare.filter_rows(document["rows"], outcome=outcome)
    data = export.result_file(document, file_format, rows)
    with transaction.atomic():
        audit.record(
            actor=user,
            action="comparison.exported",
            target=comparison,
            exercise=comparison.exercise,
            ip=ip,
            format=file_format,
            outcome=outcome,
            rows=len(rows) if rows is not None else len(document.get("pairs", [])),
            sha256=hashlib.sha256(data).hexdigest(),
        )
    suffix = f"-{outcome}" if outcome else ""
    return ResultFile(
        filename=f"{comparison.exercise.code}-comparison-{comparison.pk}{suffix}.{file_format}",
        content_type=export.CSV_CONTENT_TYPE
        if file_format == export.CSV
        else export.XLSX_CONTENT_TYPE,
        data=data,
    )
