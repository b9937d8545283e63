"""Acknowledgement requests: "received, will hold the container", on the record.

A sender asks for acknowledgement when sending (``messaging.send_message(ack=...)``, stored by
``open_request`` under the room's lock); each addressee acknowledges once (``acknowledge``),
which is audited and shown live to the room (``ack.updated``); auditors export every request
with who acknowledged and when (``export_acknowledgements``), itself audited.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from liaison import access, audit, events, payloads
from liaison.errors import Invalid, NotFound, PermissionDenied, RoomClosed
from liaison.models import (
    Acknowledgement,
    AckRequest,
    ExerciseStatus,
    Message,
    Room,
    User,
)
from liaison.services import attention
from liaison.services.mentions import Reach

DEFAULT_DUE = dt.timedelta(minutes=60)


def open_request(
    *, message: Message, addressed: Reach, due_minutes: int | None
) -> tuple[AckRequest, list[Acknowledgement]]:
    """Store the request and one row per addressee (inside the send's transaction)."""
    due = dt.timedelta(minutes=due_minutes) if due_minutes else DEFAULT_DUE
    request = AckRequest.objects.create(
        message=message,
        addressed=addressed.declared,
        created_at=message.created_at,
        due_at=message.created_at + due,
    )
    rows = Acknowledgement.objects.bulk_create(
        [Acknowledgement(request=request, user_id=ident) for ident in addressed.user_ids]
    )
    for row in rows:
        row.user = addressed.users[row.user_id]
    rows.sort(key=lambda row: (row.user.display_name, row.user_id))
    return request, rows


def _loaded(request: AckRequest) -> list[Acknowledgement]:
    return list(
        Acknowledgement.objects.filter(request=request)
        .select_related("user", "user__agency")
        .order_by("user__display_name", "user_id")
    )


def acknowledge(*, user: User, room_id: int, seq: int, ip: str | None = None) -> dict[str, Any]:
    """The addressee acknowledges message ``seq``: once (a second time changes nothing and
    answers the same), audited, and the room told (``ack.updated``). Only a current member the
    request addressed, in an active exercise, may; auditors never."""
    if isinstance(seq, bool) or not isinstance(seq, int) or seq <= 0:
        raise Invalid(_("seq must be a positive integer."), field="seq")
    room_access = access.access_room(user, room_id)
    if room_access.membership is None:
        raise PermissionDenied(_("Auditors have read-only access."))
    with transaction.atomic():
        room = (
            Room.objects.select_for_update(of=("self",))
            .select_related("exercise")
            .get(pk=room_access.room.pk)
        )
        if room.exercise.status != ExerciseStatus.ACTIVE:
            raise RoomClosed(_("The exercise is not active: nothing can be acknowledged."))
        message = Message.objects.filter(room=room, seq=seq).first()
        if message is None or message.deleted_at is not None:
            raise NotFound(_("There is no message %(seq)s in this room.") % {"seq": seq})
        request = AckRequest.objects.filter(message=message).first()
        row = (
            Acknowledgement.objects.select_for_update().filter(request=request, user=user).first()
            if request is not None
            else None
        )
        if row is None:
            raise PermissionDenied(_("This message did not ask you to acknowledge it."))
        if row.acknowledged_at is None:
            row.acknowledged_at = timezone.now()
            row.save(update_fields=["acknowledged_at"])
            audit.record(
                actor=user,
                action="message.acknowledged",
                target=message,
                exercise=room.exercise,
                ip=ip,
                room=room.pk,
                seq=seq,
                overdue=row.acknowledged_at > request.due_at,
            )
            ack = payloads.ack_payload(request, _loaded(request))
            events.publish_on_commit(
                events.room_group(room.pk),
                events.room_event(
                    events.ROOM_ACK_UPDATED,
                    {"type": "ack.updated", "room": room.pk, "seq": seq, "ack": ack},
                    epoch=room.access_epoch,
                    sender_id=user.pk,
                    written=message.created_at,
                ),
            )
            attention.publish_counts(user=user, room_ids=[room.pk])
            return ack
    return payloads.ack_payload(request, _loaded(request))


# --- auditors -------------------------------------------------------------------------------------

EXPORT_COLUMNS = (
    "room",
    "seq",
    "sender",
    "requested_at",
    "due_at",
    "addressee",
    "agency",
    "acknowledged_at",
    "overdue",
)


def acknowledgement_rows(*, exercise_id: int) -> list[dict[str, Any]]:
    """Every addressee of every request in the exercise, oldest request first."""
    rows = (
        Acknowledgement.objects.filter(request__message__room__exercise_id=exercise_id)
        .select_related(
            "user",
            "user__agency",
            "request",
            "request__message",
            "request__message__room",
            "request__message__sender",
        )
        .order_by("request__created_at", "request_id", "user__display_name", "user_id")
    )
    now = timezone.now()
    result = []
    for row in rows:
        request = row.request
        message = request.message
        done = row.acknowledged_at
        result.append(
            {
                "room": message.room.name,
                "seq": message.seq,
                "sender": message.sender.display_name,
                "requested_at": payloads.iso_utc(request.created_at),
                "due_at": payloads.iso_utc(request.due_at),
                "addressee": row.user.display_name,
                "agency": row.user.agency.code if row.user.agency_id else "",
                "acknowledged_at": payloads.iso_utc(done),
                "overdue": (done or now) > request.due_at,
            }
        )
    return result


def export_acknowledgements(
    *, auditor: User, exercise_id: object, ip: str | None = None
) -> tuple[str, str]:
    """An auditor's CSV of the exercise's acknowledgements: (file name, text). Audited."""
    access.require_auditor(auditor)
    exercise, _membership = access.access_exercise(auditor, exercise_id)
    rows = acknowledgement_rows(exercise_id=exercise.pk)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=EXPORT_COLUMNS)
    writer.writeheader()
    for row in rows:
        writer.writerow({**row, "overdue": "yes" if row["overdue"] else "no"})
    with transaction.atomic():
        audit.record(
            actor=auditor,
            action="audit.exported",
            target=exercise,
            exercise=exercise,
            ip=ip,
            what="acknowledgements",
            rows=len(rows),
        )
    return f"acknowledgements-{exercise.code}.csv", buffer.getvalue()
