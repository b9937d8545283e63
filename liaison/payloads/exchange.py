"""The exercise data exchange's JSON shapes (docs/api/exchange.md)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from liaison import crypto
from liaison.crypto import records
from liaison.models import (
    Comparison,
    Dataset,
)
from liaison.payloads import iso_utc, person_payload

logger = logging.getLogger(__name__)


# --- exercise data exchange (docs/api/exchange.md) -------------------------------------------


def _dataset_name(dataset: Dataset) -> str:
    try:
        return records.open_dataset_name(dataset)
    except crypto.ContentShredded:
        return crypto.ContentShredded.user_text
    except crypto.CryptoError:
        logger.warning("data set %s: the file name failed to decrypt", dataset.pk)
        return "(name unreadable)"


def dataset_payload(dataset: Dataset, *, errors: Sequence[Any] | None = None) -> dict[str, Any]:
    """A data set; ``errors`` are its bad rows (``RowError``) when the caller has them."""
    return {
        "id": dataset.pk,
        "exercise_id": dataset.exercise_id,
        "kind": dataset.kind,
        "status": dataset.status,
        "name": _dataset_name(dataset),
        "format": dataset.file_format,
        "encoding": dataset.encoding,
        "size": dataset.size,
        "sha256": dataset.sha256,
        "rows": dataset.rows,
        "error_count": dataset.error_count,
        "errors": [error.as_dict() for error in errors] if errors is not None else [],
        "columns": dataset.columns,
        "uploaded_by": person_payload(dataset.uploaded_by),
        "created_at": iso_utc(dataset.created_at),
    }


def comparison_payload(
    comparison: Comparison,
    document: dict[str, Any] | None,
    *,
    rows: Sequence[dict[str, Any]] | None = None,
    rows_total: int | None = None,
) -> dict[str, Any]:
    """A comparison with its result (``document``, None while it runs). A mirror comparison
    carries ``summary`` and ``outcomes`` (container numbers per outcome); ``rows``, the side by
    side lines, only when given. A list comparison carries ``overlap`` and ``pairs``."""
    inputs = {
        name: getattr(comparison, f"{name}_id")
        for name in ("exports", "imports", "allowed", "prohibited")
        if getattr(comparison, f"{name}_id")
    }
    body: dict[str, Any] = {
        "id": comparison.pk,
        "exercise_id": comparison.exercise_id,
        "kind": comparison.kind,
        "status": comparison.status,
        "progress": comparison.progress,
        "inputs": inputs,
        "run_by": person_payload(comparison.run_by),
        "created_at": iso_utc(comparison.created_at),
        "finished_at": iso_utc(comparison.finished_at),
        "failure": comparison.failure or None,
    }
    if comparison.kind == "list":
        body["overlap"] = document["overlap"] if document else []
        body["pairs"] = document["pairs"] if document else []
        return body
    body["parameters"] = {
        "weight_tolerance": comparison.weight_tolerance,
        "hs_digits": comparison.hs_digits,
        "prohibited_list": comparison.prohibited_id is not None,
    }
    body["summary"] = document["summary"] if document else {}
    body["outcomes"] = document["outcomes"] if document else {}
    if rows is not None:
        body["rows"] = list(rows)
        body["rows_total"] = rows_total if rows_total is not None else len(rows)
    return body
