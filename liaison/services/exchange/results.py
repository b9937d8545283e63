"""Comparison results: the mirror document built, sealed beside its comparison, and read back."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from django.utils import timezone

from liaison.crypto import roomkeys
from liaison.crypto.records import (
    EXCHANGE_RESULT,
)
from liaison.exchange import comparison as compare
from liaison.models import (
    Comparison,
    ComparisonKind,
    ComparisonStatus,
    Dataset,
    Room,
)
from liaison.services.exchange.datasets import dataset_rows
from liaison.services.exchange.sealing import SealedBlob, bulk_work, read_blob, seal_bytes

RESULT_FORMAT = 1


@dataclass
class ComparisonRun:
    """A comparison and its result document (None while it runs, or if it failed); for a
    read, the reader's membership (None for an auditor)."""

    comparison: Comparison
    document: dict[str, Any] | None
    membership: Any = None


def mirror_document(
    exports: Dataset,
    imports: Dataset,
    prohibited: Dataset | None,
    tolerance: float,
    digits: int,
    progress: Any = None,
) -> dict[str, Any]:
    prefixes = [entry.hs_code for entry in dataset_rows(prohibited)] if prohibited else []
    with bulk_work():
        result = compare.compare_declarations(
            dataset_rows(exports),
            dataset_rows(imports),
            prohibited=prefixes,
            weight_tolerance=tolerance,
            hs_digits=digits,
            progress=progress,
        )
        rows = [compare.pairing_row(pairing) for pairing in result.pairings]
    return {
        "format": RESULT_FORMAT,
        "kind": ComparisonKind.MIRROR,
        "parameters": {
            "weight_tolerance": tolerance,
            "hs_digits": digits,
            "prohibited_list": prohibited is not None,
        },
        "summary": result.summary,
        "outcomes": result.outcomes,
        "rows": rows,
    }


@dataclass
class SealedResult:
    key_version: int
    blob: SealedBlob


def seal_result(room: Room, document: dict[str, Any]) -> SealedResult:
    """The result document sealed into the store, before the transaction that names it (if
    that fails, the caller's ``sealed.blob.abort()`` deletes the blob again)."""
    key_version, _key = roomkeys.active_key(room.pk)
    with bulk_work():
        data = json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()
    return SealedResult(key_version, seal_bytes(room.pk, key_version, EXCHANGE_RESULT, data))


def finish_comparison(
    comparison: Comparison, sealed: SealedResult, summary: dict[str, int]
) -> None:
    """Mark the comparison done with its sealed result (in the caller's transaction)."""
    comparison.status = ComparisonStatus.DONE
    comparison.progress = 100
    comparison.finished_at = timezone.now()
    comparison.summary = summary
    comparison.key_version = sealed.key_version
    comparison.result_storage_name = sealed.blob.name
    comparison.result_size = sealed.blob.size
    comparison.result_sha256 = sealed.blob.sha256
    comparison.save()


def result_document(comparison: Comparison) -> dict[str, Any] | None:
    """The sealed result of a finished comparison (None while running or after a failure)."""
    if comparison.status != ComparisonStatus.DONE or not comparison.result_storage_name:
        return None
    assert comparison.key_version is not None
    data = read_blob(
        comparison.key_room_id,
        comparison.key_version,
        comparison.result_storage_name,
        EXCHANGE_RESULT,
    )
    with bulk_work():
        return json.loads(data)
