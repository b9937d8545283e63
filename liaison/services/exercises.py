"""Exercises: creation, edits and the status machine (rooms are added by ``services.rooms``).

An exercise moves ``draft → active → closed → archived`` and never back (then ``shredded``, by
``services.keys``). Only admins provision it (``access.require_admin``); the scheduler
(``services.lifecycle``) makes the same moves by the calendar. Once closed it is read-only: no
edits, rooms, invitations or membership changes. Every move is announced in its rooms by a
notice from Liaison; closing and archiving tell every open socket of its rooms to close. Who may
see or manage an exercise is decided in ``access``; the lists of exercises are ``selectors``.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Sequence
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from liaison import audit, events
from liaison.access import require_admin
from liaison.errors import Conflict, Invalid
from liaison.models import (
    Agency,
    Exercise,
    ExerciseStatus,
    HistoryVisibility,
    Membership,
    Room,
    User,
)
from liaison.services import messaging, revocation

DEFAULT_ROOM_NAME = "general"
CODE_RE = re.compile(r"^[A-Z0-9]+(?:-[A-Z0-9]+)*$")
HS_PREFIX_RE = re.compile(r"^[0-9]{2,10}$")
MAX_LANES = 20
MAX_HS_CODES = 200
RETENTION_DAYS_RANGE = (1, 3650)

# The only moves of the status machine: action -> (from, to).
TRANSITIONS: dict[str, tuple[str, str]] = {
    "activate": (ExerciseStatus.DRAFT, ExerciseStatus.ACTIVE),
    "close": (ExerciseStatus.ACTIVE, ExerciseStatus.CLOSED),
    "archive": (ExerciseStatus.CLOSED, ExerciseStatus.ARCHIVED),
}
PAST_TENSE = {"activate": "activated", "close": "closed", "archive": "archived"}
REFUSED_TRANSITION = {
    "activate": gettext_lazy("only a draft exercise can be activated."),
    "close": gettext_lazy("only an active exercise can be closed."),
    "archive": gettext_lazy("only a closed exercise can be archived."),
}
# The notice each move leaves in the exercise's rooms, one line per interface language.
ANNOUNCEMENTS = {
    "activate": gettext_lazy("Exercise %(code)s is now active: its rooms are open for posting."),
    "close": gettext_lazy("Exercise %(code)s has closed: its rooms are read-only from now on."),
    "archive": gettext_lazy(
        "Exercise %(code)s has been archived: from now on only auditors can read it."
    ),
}


# --- state --------------------------------------------------------------------------------------


def require_writable(exercise: Exercise) -> None:
    """A closed (or archived) exercise is read-only."""
    if not exercise.is_writable:
        raise Conflict(
            _("Exercise %(code)s is %(status)s: it is read-only and cannot be changed.")
            % {"code": exercise.code, "status": exercise.get_status_display().lower()}
        )


def lock_exercise(exercise: Exercise) -> Exercise:
    """The exercise row, re-read under SELECT ... FOR UPDATE (call inside a transaction), so
    provisioning actions on one exercise happen one after another against its current state."""
    return Exercise.objects.select_for_update().get(pk=exercise.pk)


# --- input checks --------------------------------------------------------------------------------


def clean_code(code: str) -> str:
    value = (code or "").strip().upper()
    if not 3 <= len(value) <= 40 or not CODE_RE.match(value):
        raise Invalid(
            _(
                "The exercise code must be 3 to 40 letters, digits and single hyphens, "
                "like CFE-2026-07."
            ),
            field="code",
        )
    return value


def clean_title(title: str) -> str:
    value = (title or "").strip()
    if not value:
        raise Invalid(_("The exercise needs a title."), field="title")
    if len(value) > 200:
        raise Invalid(_("The title is longer than 200 characters."), field="title")
    return value


def clean_commodity_focus(value: str) -> str:
    value = (value or "").strip()
    if len(value) > 200:
        raise Invalid(
            _("The commodity focus is longer than 200 characters."), field="commodity_focus"
        )
    return value


def clean_hs_codes(values: Iterable[str]) -> list[str]:
    """HS code prefixes as digit strings (dots and spaces removed), unique, in input order."""
    cleaned: list[str] = []
    for raw in values or []:
        value = re.sub(r"[\s.]", "", str(raw))
        if not value:
            continue
        if not HS_PREFIX_RE.match(value):
            raise Invalid(
                _("%(value)s is not an HS code prefix: use 2 to 10 digits, like 3915 or 4707.10.")
                % {"value": repr(str(raw)[:20])},
                field="hs_codes",
            )
        if value not in cleaned:
            cleaned.append(value)
    if len(cleaned) > MAX_HS_CODES:
        raise Invalid(
            _("At most %(max_hs_codes)s HS code prefixes.") % {"max_hs_codes": MAX_HS_CODES},
            field="hs_codes",
        )
    return cleaned


def clean_lanes(values: Iterable[str]) -> list[str]:
    cleaned: list[str] = []
    for raw in values or []:
        value = " ".join(str(raw).split())
        if not value:
            continue
        if len(value) > 120:
            raise Invalid(_("A lane name is longer than 120 characters."), field="lanes")
        if value not in cleaned:
            cleaned.append(value)
    if len(cleaned) > MAX_LANES:
        raise Invalid(_("At most %(max_lanes)s lanes.") % {"max_lanes": MAX_LANES}, field="lanes")
    return cleaned


def clean_agencies(agencies: Iterable[Agency]) -> list[Agency]:
    cleaned = list({agency.pk: agency for agency in agencies or []}.values())
    if not cleaned:
        raise Invalid(_("Choose at least one participating agency."), field="agencies")
    return cleaned


def clean_period(starts_at: dt.datetime, ends_at: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    if not isinstance(starts_at, dt.datetime) or timezone.is_naive(starts_at):
        raise Invalid(_("The start needs a date, a time and a time zone."), field="starts_at")
    if not isinstance(ends_at, dt.datetime) or timezone.is_naive(ends_at):
        raise Invalid(_("The end needs a date, a time and a time zone."), field="ends_at")
    if ends_at <= starts_at:
        raise Invalid(_("The exercise must end after it starts."), field="ends_at")
    return starts_at, ends_at


def clean_retention_days(value: int) -> int:
    low, high = RETENTION_DAYS_RANGE
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise Invalid(
            _("Retention must be a whole number of days from %(low)s to %(high)s.")
            % {"low": low, "high": high},
            field="retention_days",
        )
    return value


def clean_history_visibility(value: str) -> str:
    if value not in HistoryVisibility.values:
        raise Invalid(
            _("History visibility must be %(choices)s.")
            % {"choices": " or ".join(HistoryVisibility.values)},
            field="history_visibility",
        )
    return value


# --- writes ---------------------------------------------------------------------------------------


def create_exercise(
    *,
    actor: User,
    code: str,
    title: str,
    agencies: Sequence[Agency],
    starts_at: dt.datetime,
    ends_at: dt.datetime,
    commodity_focus: str = "",
    hs_codes: Sequence[str] = (),
    lanes: Sequence[str] = (),
    retention_days: int = 365,
    history_visibility: str = HistoryVisibility.SHARED,
    ip: str | None = None,
) -> Exercise:
    """A new exercise in ``draft``, with its default ``general`` room. ``history_visibility``
    is fixed here for its whole life: what a member who joins late may read."""
    require_admin(actor)
    history_visibility = clean_history_visibility(history_visibility)
    code = clean_code(code)
    title = clean_title(title)
    commodity_focus = clean_commodity_focus(commodity_focus)
    hs_list = clean_hs_codes(hs_codes)
    lane_list = clean_lanes(lanes)
    agency_list = clean_agencies(agencies)
    starts_at, ends_at = clean_period(starts_at, ends_at)
    retention_days = clean_retention_days(retention_days)
    if Exercise.objects.filter(code=code).exists():
        raise Conflict(
            _("An exercise with the code %(code)s already exists.") % {"code": code}, field="code"
        )
    try:
        with transaction.atomic():
            exercise = Exercise.objects.create(
                code=code,
                title=title,
                commodity_focus=commodity_focus,
                hs_codes=hs_list,
                lanes=lane_list,
                starts_at=starts_at,
                ends_at=ends_at,
                retention_days=retention_days,
                history_visibility=history_visibility,
                status=ExerciseStatus.DRAFT,
                created_by=actor,
            )
            exercise.agencies.set(agency_list)
            general = Room.objects.create(
                exercise=exercise, name=DEFAULT_ROOM_NAME, title="General", created_by=actor
            )
            audit.record(
                actor=actor,
                action="exercise.created",
                target=exercise,
                exercise=exercise,
                ip=ip,
                code=code,
                title=title,
                agencies=sorted(agency.code for agency in agency_list),
                starts_at=starts_at.isoformat(),
                ends_at=ends_at.isoformat(),
                retention_days=retention_days,
                history_visibility=history_visibility,
                general_room_id=general.pk,
            )
    except IntegrityError:  # a concurrent create took the code between the check and the insert
        raise Conflict(
            _("An exercise with the code %(code)s already exists.") % {"code": code}, field="code"
        ) from None
    return exercise


_UNCHANGED: Any = object()


def update_exercise(
    *,
    actor: User,
    exercise: Exercise,
    code: str = _UNCHANGED,
    title: str = _UNCHANGED,
    commodity_focus: str = _UNCHANGED,
    hs_codes: Sequence[str] = _UNCHANGED,
    lanes: Sequence[str] = _UNCHANGED,
    agencies: Sequence[Agency] = _UNCHANGED,
    starts_at: dt.datetime = _UNCHANGED,
    ends_at: dt.datetime = _UNCHANGED,
    retention_days: int = _UNCHANGED,
    ip: str | None = None,
) -> Exercise:
    """Change an exercise's description while it is a draft or active; omitted fields stay.

    The code can change only while the exercise is a draft (scripts and people know it by its
    code once it runs). An agency with current members cannot be dropped.
    """
    require_admin(actor)
    with transaction.atomic():
        exercise = lock_exercise(exercise)
        require_writable(exercise)
        changes: dict[str, Any] = {}
        if code is not _UNCHANGED:
            new_code = clean_code(code)
            if new_code != exercise.code:
                if exercise.status != ExerciseStatus.DRAFT:
                    raise Invalid(
                        _("The code can only be changed while the exercise is a draft."),
                        field="code",
                    )
                if Exercise.objects.filter(code=new_code).exclude(pk=exercise.pk).exists():
                    raise Conflict(
                        _("An exercise with the code %(new_code)s already exists.")
                        % {"new_code": new_code},
                        field="code",
                    )
                changes["code"] = new_code
        if title is not _UNCHANGED:
            changes["title"] = clean_title(title)
        if commodity_focus is not _UNCHANGED:
            changes["commodity_focus"] = clean_commodity_focus(commodity_focus)
        if hs_codes is not _UNCHANGED:
            changes["hs_codes"] = clean_hs_codes(hs_codes)
        if lanes is not _UNCHANGED:
            changes["lanes"] = clean_lanes(lanes)
        if retention_days is not _UNCHANGED:
            changes["retention_days"] = clean_retention_days(retention_days)
        new_start = exercise.starts_at if starts_at is _UNCHANGED else starts_at
        new_end = exercise.ends_at if ends_at is _UNCHANGED else ends_at
        new_start, new_end = clean_period(new_start, new_end)
        if new_start != exercise.starts_at:
            changes["starts_at"] = new_start
        if new_end != exercise.ends_at:
            changes["ends_at"] = new_end
        changes = {k: v for k, v in changes.items() if getattr(exercise, k) != v}

        agency_change: dict[str, list[str]] = {}
        if agencies is not _UNCHANGED:
            wanted = {agency.code: agency for agency in clean_agencies(agencies)}
            current = {agency.code: agency for agency in exercise.agencies.all()}
            dropped = sorted(set(current) - set(wanted))
            busy = sorted(
                Membership.objects.filter(
                    exercise=exercise, removed_at__isnull=True, user__agency__code__in=dropped
                )
                .values_list("user__agency__code", flat=True)
                .distinct()
            )
            if busy:
                raise Invalid(
                    _(
                        "%(values)s still has members in this exercise: remove them before dropping the "
                        "agency."
                    )
                    % {"values": ", ".join(busy)},
                    field="agencies",
                )
            if set(wanted) != set(current):
                agency_change = {"added": sorted(set(wanted) - set(current)), "removed": dropped}
                exercise.agencies.set(list(wanted.values()))

        if not changes and not agency_change:
            raise Invalid(_("Nothing to change: every value is the same as before."))
        for name, value in changes.items():
            setattr(exercise, name, value)
        exercise.save()
        audit.record(
            actor=actor,
            action="exercise.updated",
            target=exercise,
            exercise=exercise,
            ip=ip,
            changed={
                name: value.isoformat() if isinstance(value, dt.datetime) else value
                for name, value in changes.items()
            },
            agencies=agency_change or None,
        )
    return exercise


def announcement(exercise: Exercise, action: str) -> str:
    """The notice of a move, in every interface language (members read the same room)."""
    lines: list[str] = []
    for language, _name in settings.LANGUAGES:
        with translation.override(language):
            line = str(ANNOUNCEMENTS[action]) % {"code": exercise.code}
        if line not in lines:
            lines.append(line)
    return "\n".join(lines)


def _announce(exercise: Exercise, action: str) -> list[int]:
    """Leave the move's notice in every room; returns the rooms it went to."""
    text = announcement(exercise, action)
    announced = []
    for room_id in (
        Room.objects.filter(exercise=exercise).order_by("pk").values_list("pk", flat=True)
    ):
        if messaging.post_notice(room_id=room_id, client_id=f"exercise-{action}", body=text):
            announced.append(room_id)
    return announced


def _transition(
    *,
    actor: User | None,
    exercise: Exercise,
    action: str,
    ip: str | None,
    actor_label: str = "",
) -> Exercise:
    """One move of the status machine; ``actor`` is None when the scheduler makes it (then
    ``actor_label`` names it)."""
    if actor is not None:
        require_admin(actor)
    source, target = TRANSITIONS[action]
    with transaction.atomic():
        exercise = lock_exercise(exercise)
        if exercise.status != source:
            raise Conflict(
                _("Exercise %(code)s is %(status)s; %(refused_transition)s")
                % {
                    "code": exercise.code,
                    "status": exercise.get_status_display().lower(),
                    "refused_transition": REFUSED_TRANSITION[action],
                }
            )
        now = timezone.now()
        if action == "activate" and exercise.ends_at <= now:
            raise Invalid(
                _(
                    "Exercise %(code)s ended on %(ends_at)s UTC: move its end date before activating "
                    "it."
                )
                % {"code": exercise.code, "ends_at": format(exercise.ends_at, "%Y-%m-%d %H:%M")},
                field="ends_at",
            )
        exercise.status = target
        if action == "close":
            exercise.closed_at = now
        elif action == "archive":
            exercise.archived_at = now
        exercise.save(update_fields=["status", "closed_at", "archived_at", "updated_at"])
        # The notice goes out before the rooms' epochs move, so open sockets show it before
        # they are told the room closed.
        announced = _announce(exercise, action)
        audit.record(
            actor=actor,
            actor_label=actor_label,
            action=f"exercise.{PAST_TENSE[action]}",
            target=exercise,
            exercise=exercise,
            ip=ip,
            status_from=str(source),
            status_to=str(target),
            announced_in=announced,
            **({"scheduled": True} if actor is None else {}),
        )
        cut = revocation.narrow_exercise(exercise_id=exercise.pk)
        if action in {"close", "archive"}:
            for room_id in cut:
                events.publish_on_commit(
                    events.room_group(room_id),
                    events.room_closed(room_id=room_id, status=str(target)),
                )
    return exercise


def scheduled_transition(*, exercise: Exercise, action: str, actor_label: str) -> Exercise:
    """The scheduler's move (``services.lifecycle``): the same checks, notices and events as an
    administrator's, audited under ``actor_label``."""
    return _transition(
        actor=None, exercise=exercise, action=action, ip=None, actor_label=actor_label
    )


def activate_exercise(*, actor: User, exercise: Exercise, ip: str | None = None) -> Exercise:
    """draft → active: its rooms open for posting."""
    return _transition(actor=actor, exercise=exercise, action="activate", ip=ip)


def close_exercise(*, actor: User, exercise: Exercise, ip: str | None = None) -> Exercise:
    """active → closed: read-only from now on; open sockets of its rooms are closed (4409)."""
    return _transition(actor=actor, exercise=exercise, action="close", ip=ip)


def archive_exercise(*, actor: User, exercise: Exercise, ip: str | None = None) -> Exercise:
    """closed → archived: members lose sight of it; only auditors (and admins) still see it."""
    return _transition(actor=actor, exercise=exercise, action="archive", ip=ip)
