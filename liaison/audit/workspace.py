"""The auditors' workspace: read-only views of every exercise, each one itself audited.

Auditors read everything and change nothing: every function here only reads, apart from the
audit event it appends ("audit.viewed", "audit.searched", "audit.exported", "audit.verified").
Anyone else is refused with ``AccessDenied`` (a 404, ``access.require_auditor``), so the
workspace does not reveal itself.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.db.models import Count
from django.utils.translation import gettext

from liaison import access, audit
from liaison.audit import export, verify
from liaison.audit.search import SearchResult, search_messages  # noqa: F401 (workspace API)
from liaison.audit.transcripts import iter_transcript
from liaison.errors import Invalid
from liaison.models import AuditEvent, Exercise, Message, Room, User

TRAIL_PAGE_SIZE = 50
TRANSCRIPT_PAGE_SIZE = 200


def _viewed(
    auditor: User,
    *,
    page: str,
    ip: str | None,
    target: Any = None,
    exercise: Any = None,
    **details: Any,
) -> None:
    audit.record(
        actor=auditor,
        action="audit.viewed",
        target=target,
        exercise=exercise,
        ip=ip,
        page=page,
        **details,
    )


def record_page_view(*, auditor: User, page: str, ip: str | None = None) -> None:
    """Audit a workspace page that shows no records yet (a form before it is submitted)."""
    access.require_auditor(auditor)
    _viewed(auditor, page=page, ip=ip)


def open_search(*, auditor: User, exercise_id: object, ip: str | None = None) -> Exercise:
    """The exercise whose search form is shown (audited as a view)."""
    access.require_auditor(auditor)
    exercise, _ = access.access_exercise(auditor, exercise_id)
    _viewed(auditor, page="search", ip=ip, target=exercise, exercise=exercise)
    return exercise


# --- exercises ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExerciseRow:
    exercise: Exercise
    rooms: int
    messages: int
    events: int


def list_exercises(*, auditor: User, ip: str | None = None) -> list[ExerciseRow]:
    """Every exercise in every state (draft to shredded), with its size."""
    access.require_auditor(auditor)
    exercises = list(
        Exercise.objects.annotate(
            room_count=Count("rooms", distinct=True), message_count=Count("rooms__messages")
        ).order_by("-starts_at", "code")
    )
    events = dict(
        AuditEvent.objects.filter(exercise_id__isnull=False)
        .values_list("exercise_id")
        .annotate(n=Count("pk"))
        .values_list("exercise_id", "n")
    )
    rows = [ExerciseRow(e, e.room_count, e.message_count, events.get(e.pk, 0)) for e in exercises]
    _viewed(auditor, page="exercises", ip=ip)
    return rows


@dataclass(frozen=True)
class ExerciseOverview:
    exercise: Exercise
    rooms: list[Room]
    members: list[Any]
    events: int


def exercise_overview(
    *, auditor: User, exercise_id: object, ip: str | None = None
) -> ExerciseOverview:
    access.require_auditor(auditor)
    exercise, _ = access.access_exercise(auditor, exercise_id)
    rooms = list(
        Room.objects.filter(exercise=exercise)
        .annotate(message_count=Count("messages"))
        .order_by("name")
    )
    members = list(
        exercise.memberships.select_related("user", "user__agency").order_by("created_at")
    )
    events = AuditEvent.objects.filter(exercise=exercise).count()
    _viewed(auditor, page="exercise", ip=ip, target=exercise, exercise=exercise)
    return ExerciseOverview(exercise, rooms, members, events)


# --- the audit trail -----------------------------------------------------------------------------


@dataclass(frozen=True)
class TrailFilters:
    exercise: Exercise | None = None
    actor: str = ""
    action: str = ""
    date_from: dt.date | None = None
    date_to: dt.date | None = None

    def as_details(self) -> dict[str, Any]:
        return {
            "exercise": self.exercise.code if self.exercise else "",
            "actor": self.actor,
            "action": self.action,
            "from": self.date_from.isoformat() if self.date_from else "",
            "to": self.date_to.isoformat() if self.date_to else "",
        }


def _parse_date(value: str, name: str) -> dt.date | None:
    value = (value or "").strip()
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise Invalid(
            gettext("%(name)s must be a date like 2026-07-01, not %(value)s.")
            % {"name": name, "value": repr(value[:40])},
            field=name,
        ) from None


def parse_trail_filters(params: Mapping[str, str]) -> TrailFilters:
    """Filters from query parameters; a bad value is an ``Invalid`` naming it."""
    exercise = None
    code = (params.get("exercise") or "").strip()
    if code:
        exercise = Exercise.objects.filter(code__iexact=code).first()
        if exercise is None and code.isdigit():
            exercise = Exercise.objects.filter(pk=int(code)).first()
        if exercise is None:
            raise Invalid(
                gettext("There is no exercise %(code)s.") % {"code": repr(code[:40])},
                field="exercise",
            )
    date_from = _parse_date(params.get("from", ""), "from")
    date_to = _parse_date(params.get("to", ""), "to")
    if date_from and date_to and date_to < date_from:
        raise Invalid(gettext("The end date is before the start date."), field="to")
    return TrailFilters(
        exercise=exercise,
        actor=(params.get("actor") or "").strip()[:254],
        action=(params.get("action") or "").strip()[:64],
        date_from=date_from,
        date_to=date_to,
    )


def _parse_seq(value: object, name: str) -> int | None:
    if value in (None, ""):
        return None
    try:
        number = int(str(value))
    except ValueError:
        raise Invalid(
            gettext("%(name)s must be a whole number.") % {"name": name}, field=name
        ) from None
    if number < 0:
        raise Invalid(gettext("%(name)s must not be negative.") % {"name": name}, field=name)
    return number


@dataclass(frozen=True)
class TrailPage:
    events: list[AuditEvent]
    older_than: int | None  # pass as ``before`` for the next (older) page
    newer_than: int | None  # pass as ``after`` for the previous (newer) page
    actions: list[str]


def audit_trail(
    *,
    auditor: User,
    filters: TrailFilters,
    before: object = None,
    after: object = None,
    ip: str | None = None,
    page_size: int = TRAIL_PAGE_SIZE,
) -> TrailPage:
    """A page of the audit trail, newest first, paged by ``seq`` (keyset, so deep pages stay
    as fast as the first)."""
    access.require_auditor(auditor)
    before_seq, after_seq = _parse_seq(before, "before"), _parse_seq(after, "after")
    query = AuditEvent.objects.all()
    if filters.exercise is not None:
        query = query.filter(exercise=filters.exercise)
    if filters.actor:
        if filters.actor.isdigit():
            query = query.filter(actor_id=int(filters.actor))
        else:
            query = query.filter(actor_label__icontains=filters.actor)
    if filters.action:
        query = query.filter(action__startswith=filters.action)
    if filters.date_from:
        query = query.filter(created_at__gte=_day_start(filters.date_from))
    if filters.date_to:
        query = query.filter(created_at__lt=_day_start(filters.date_to + dt.timedelta(days=1)))
    if after_seq is not None:
        rows = list(query.filter(seq__gt=after_seq).order_by("seq")[: page_size + 1])
        has_more_newer = len(rows) > page_size
        rows = list(reversed(rows[:page_size]))
        has_more_older = query.filter(seq__lte=after_seq).exists()
    else:
        if before_seq is not None:
            query = query.filter(seq__lt=before_seq)
        rows = list(query.order_by("-seq")[: page_size + 1])
        has_more_older = len(rows) > page_size
        rows = rows[:page_size]
        has_more_newer = before_seq is not None and bool(rows)
    codes = dict(
        Exercise.objects.filter(pk__in={e.exercise_id for e in rows if e.exercise_id}).values_list(
            "pk", "code"
        )
    )
    for event in rows:  # display helpers, like an annotation
        event.exercise_code = codes.get(event.exercise_id, "")
        event.details_json = json.dumps(event.details, ensure_ascii=False, sort_keys=True)
    actions = list(
        AuditEvent.objects.order_by("action").values_list("action", flat=True).distinct()
    )
    _viewed(
        auditor,
        page="trail",
        ip=ip,
        exercise=filters.exercise,
        filters=filters.as_details(),
        before=before_seq,
        after=after_seq,
    )
    return TrailPage(
        events=rows,
        older_than=rows[-1].seq if rows and has_more_older else None,
        newer_than=rows[0].seq if rows and has_more_newer else None,
        actions=actions,
    )


def _day_start(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.min, tzinfo=dt.UTC)


# --- transcripts -----------------------------------------------------------------------------


@dataclass(frozen=True)
class TranscriptPage:
    room: Room
    entries: list[dict[str, Any]]
    after: int
    next_after: int | None
    previous_after: int | None


def room_transcript(
    *,
    auditor: User,
    room_id: object,
    after: object = None,
    ip: str | None = None,
    page_size: int = TRANSCRIPT_PAGE_SIZE,
) -> TranscriptPage:
    """A page of a room's decrypted transcript with every edit, deletion and shredding shown."""
    access.require_auditor(auditor)
    room = access.access_room(auditor, room_id).room
    after_seq = _parse_seq(after, "after") or 0
    entries = list(iter_transcript(room, after_seq=after_seq, limit=page_size))
    more = bool(entries) and Message.objects.filter(room=room, seq__gt=entries[-1]["seq"]).exists()
    _viewed(
        auditor,
        page="transcript",
        ip=ip,
        target=room,
        exercise=room.exercise,
        after=after_seq,
        messages=len(entries),
    )
    return TranscriptPage(
        room=room,
        entries=entries,
        after=after_seq,
        next_after=entries[-1]["seq"] if more else None,
        previous_after=max(after_seq - page_size, 0) if after_seq > 0 else None,
    )


# --- integrity and exports ---------------------------------------------------------------------


def verify_integrity(
    *, auditor: User, exercise_id: object = None, ip: str | None = None
) -> verify.VerifyReport:
    """Walk the chains and compare them with the signed checkpoints (the "verify" button)."""
    access.require_auditor(auditor)
    exercise = None
    if exercise_id not in (None, ""):
        exercise, _ = access.access_exercise(auditor, exercise_id)
    report = verify.verify(exercise=exercise)
    first = report.first_break
    audit.record(
        actor=auditor,
        action="audit.verified",
        target=exercise,
        exercise=exercise,
        ip=ip,
        ok=report.ok,
        head_seq=report.head_seq,
        broken_seq=first.seq if first else None,
        reason=first.reason if first else "",
        checkpoints=report.checkpoints_checked,
    )
    return report


def _exported(
    *,
    actor: User | None,
    exercise: Exercise,
    result: export.ExportResult,
    ip: str | None,
    via: str,
    actor_label: str = "",
) -> None:
    audit.record(
        actor=actor,
        actor_label=actor_label,
        action="audit.exported",
        target=exercise,
        exercise=exercise,
        ip=ip,
        via=via,
        manifest_sha256=result.manifest_sha256,
        events=result.events,
        rooms=result.rooms,
        messages=result.messages,
    )


def export_exercise_to_directory(
    *, exercise_code: str, out: str | Path, actor_label: str = "manage.py audit export"
) -> export.ExportResult:
    """The operator's export (``manage.py audit export``) into a directory, audited too."""
    exercise = Exercise.objects.filter(code=exercise_code).first()
    if exercise is None:
        raise Invalid(
            gettext("There is no exercise %(exercise_code)s.")
            % {"exercise_code": repr(exercise_code)},
            field="exercise",
        )
    sink = export.DirectorySink(out)
    try:
        sink.prepare()
    except FileExistsError as exc:
        raise Invalid(f"{exc} Choose an empty directory.", field="out") from None
    result = export.write_export(exercise=exercise, sink=sink)
    _exported(
        actor=None, actor_label=actor_label, exercise=exercise, result=result, ip=None, via="cli"
    )
    return result
