"""The signed hand-over package of a comparison for the departments that act on it."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import io
import json
import zipfile
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from liaison import access, audit
from liaison.audit import signing
from liaison.crypto import records
from liaison.errors import (
    Invalid,
    PermissionDenied,
    RoomClosed,
)
from liaison.exchange import export
from liaison.models import (
    Dataset,
    ExerciseStatus,
    GroupRole,
    User,
)
from liaison.services.exchange.downloads import ResultFile, finished_document
from liaison.services.exchange.results import ComparisonRun, result_document

HANDOVER_FORMAT = "liaison-handover"
HANDOVER_VERSION = 1
RECIPIENT_MAX_CHARS = 200


def _input_entry(dataset: Dataset) -> dict[str, Any]:
    return {
        "id": dataset.pk,
        "kind": dataset.kind,
        "name": records.open_dataset_name(dataset),
        "format": dataset.file_format,
        "size": dataset.size,
        "sha256": dataset.sha256,
        "rows": dataset.rows,
        "uploaded_by": dataset.uploaded_by.display_name,
        "agency": dataset.uploaded_by.agency.name if dataset.uploaded_by.agency_id else "",
        "uploaded_at": dataset.created_at.astimezone(dt.UTC).isoformat(timespec="seconds"),
    }


def hand_over_comparison(
    *, user: User, comparison_id: object, recipient: str, ip: str | None = None
) -> ResultFile:
    """The comparison's result as a package for the departments that act on it: the result
    as CSV and XLSX and a manifest (exercise, comparison, its inputs with their SHA-256, who
    handed it to whom and when, every file's size and SHA-256) signed with the audit key, so
    ``liaison/audit/offline_verifier.py`` checks it with the public key alone. The hand-over
    is on record. Members and coordinators hand over, in an active or closed exercise."""
    comparison, membership = access.access_comparison(user, comparison_id)
    if membership is None or membership.role == GroupRole.OBSERVER:
        raise PermissionDenied(_("Only members and coordinators of the exercise hand data over."))
    if comparison.exercise.status not in {ExerciseStatus.ACTIVE, ExerciseStatus.CLOSED}:
        raise RoomClosed(_("This exercise is not active: its data is read-only."))
    recipient = " ".join(str(recipient or "").split())
    if not recipient:
        raise Invalid(_("Name the departments the data is handed to."), field="recipient")
    if len(recipient) > RECIPIENT_MAX_CHARS:
        raise Invalid(
            _("The recipient holds at most %(limit)s characters.") % {"limit": RECIPIENT_MAX_CHARS},
            field="recipient",
        )
    document = finished_document(ComparisonRun(comparison, result_document(comparison)))
    stem = f"{comparison.exercise.code}-comparison-{comparison.pk}"
    files = {
        f"{stem}.csv": export.result_file(document, export.CSV),
        f"{stem}.xlsx": export.result_file(document, export.XLSX),
    }
    inputs = [
        _input_entry(dataset)
        for dataset in (
            comparison.exports,
            comparison.imports,
            comparison.allowed,
            comparison.prohibited,
        )
        if dataset is not None
    ]
    now = timezone.now().astimezone(dt.UTC).isoformat(timespec="seconds")
    manifest = {
        "format": HANDOVER_FORMAT,
        "version": HANDOVER_VERSION,
        "created_at": now,
        "exercise": {
            "id": comparison.exercise.pk,
            "code": comparison.exercise.code,
            "title": comparison.exercise.title,
        },
        "comparison": {
            "id": comparison.pk,
            "kind": comparison.kind,
            "run_by": comparison.run_by.display_name,
            "created_at": comparison.created_at.astimezone(dt.UTC).isoformat(timespec="seconds"),
            "weight_tolerance": comparison.weight_tolerance,
            "hs_digits": comparison.hs_digits,
            "summary": comparison.summary,
            "result_sha256": comparison.result_sha256,
            "inputs": inputs,
        },
        "handed_over": {
            "by": user.display_name,
            "agency": user.agency.name if user.agency_id else "",
            "to": recipient,
            "at": now,
        },
        "files": [
            {"name": name, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
            for name, data in files.items()
        ],
        "signature": {"algorithm": "Ed25519", "public_key": signing.public_key_b64()},
    }
    manifest_bytes = json.dumps(manifest, ensure_ascii=False, indent=2).encode()
    signature = base64.b64encode(signing.sign(manifest_bytes)).decode() + "\n"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as package:
        for name, data in files.items():
            package.writestr(name, data)
        package.writestr("manifest.json", manifest_bytes)
        package.writestr("manifest.sig", signature)
    data = buffer.getvalue()
    with transaction.atomic():
        audit.record(
            actor=user,
            action="comparison.handed_over",
            target=comparison,
            exercise=comparison.exercise,
            ip=ip,
            recipient=recipient,
            manifest_sha256=hashlib.sha256(manifest_bytes).hexdigest(),
            package_sha256=hashlib.sha256(data).hexdigest(),
        )
    return ResultFile(filename=f"{stem}-handover.zip", content_type="application/zip", data=data)
