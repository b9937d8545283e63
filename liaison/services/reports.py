"""Seizure reports: posted into a room as ``report`` messages, exported for the whole exercise.

Posting goes through ``messaging.send_message`` (sealed, recorded in the room's chain,
delivered live like any message, idempotent by ``client_id``); the body is the report's JSON
(``liaison.exchange.reports``). The export decrypts every report of the exercise the reader may
see and writes one CSV with formulas neutralised; each export is on record.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from django.db import transaction
from django.db.models import Q

from liaison import access, audit, selectors
from liaison.crypto import ContentShredded, CryptoError, records
from liaison.exchange import export
from liaison.exchange import reports as seizure
from liaison.models import Message, MessageKind, User
from liaison.services import messaging
from liaison.services.exchange import ResultFile


def post_report(
    *,
    sender: User,
    room_id: int,
    client_id: str,
    fields: Mapping[str, Any],
) -> messaging.SendResult:
    """Check the report and post it as a ``report`` message (the sender must be able to post
    in the room, as for any message)."""
    report = seizure.clean_report(fields)
    return messaging.send_message(
        sender=sender,
        room_id=room_id,
        client_id=client_id,
        body=report.body(),
        kind=MessageKind.REPORT,
    )


def _current_body(message: Message) -> str:
    revisions = sorted(message.revisions.all(), key=lambda revision: revision.number)
    if revisions:
        return records.open_revision(revisions[-1], message)
    return records.open_message_body(message)


def export_reports(*, user: User, exercise_id: object, ip: str | None = None) -> ResultFile:
    """Every seizure report of the exercise (not deleted, still readable) as one CSV, oldest
    first, for members and auditors; on record as ``report.exported``."""
    exercise, membership = access.access_exchange(user, exercise_id)
    messages = (
        Message.objects.filter(
            room__exercise=exercise, kind=MessageKind.REPORT, deleted_at__isnull=True
        )
        # A member of a ``joined`` exercise reads the reports sent since they joined.
        .filter(selectors.visible_history(user) if membership is not None else Q())
        .select_related("sender__agency", "room")
        .prefetch_related("revisions")
        .order_by("created_at", "room_id", "seq")
    )
    rows: list[list[Any]] = []
    skipped = 0
    for message in messages:
        try:
            report = seizure.parse_body(_current_body(message))
        except (ContentShredded, CryptoError):
            report = None
        if report is None:
            skipped += 1
            continue
        rows.append(
            seizure.export_row(
                reference=f"{exercise.code}/{message.room.name}/{message.seq}",
                reported_at=message.created_at.isoformat(timespec="seconds"),
                room=message.room.title or message.room.name,
                reported_by=message.sender.display_name,
                agency=message.sender.agency.name if message.sender.agency_id else "",
                report=report,
            )
        )
    data = export.write_csv(seizure.export_headers(), rows)
    with transaction.atomic():
        audit.record(
            actor=user,
            action="report.exported",
            target=("exercise", exercise.pk),
            exercise=exercise,
            ip=ip,
            reports=len(rows),
            unreadable=skipped,
            sha256=hashlib.sha256(data).hexdigest(),
        )
    return ResultFile(
        filename=f"{exercise.code}-seizure-reports.csv",
        content_type=export.CSV_CONTENT_TYPE,
        data=data,
    )
