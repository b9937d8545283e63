"""Read queries: messages by sequence number, unread counts, who is online.

Each function that reads a room checks access first (``access.access_room``), so a caller
cannot read what it may not see, and applies the exercise's history visibility (a member of a
``joined`` exercise reads from their joining: ``access.visible_from``, ``visible_history``).
Message lists come back as protocol message objects.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db.models import (
    Count,
    F,
    IntegerField,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    Value,
)
from django.db.models.functions import Coalesce
from django.utils.translation import gettext as _

from liaison import access, payloads
from liaison.errors import Invalid
from liaison.models import (
    Acknowledgement,
    Exercise,
    GroupRole,
    HistoryVisibility,
    Membership,
    Mention,
    Message,
    ReadMarker,
    Role,
    Room,
    RoomPreference,
    User,
)

HISTORY_DEFAULT_LIMIT = 50
HISTORY_MAX_LIMIT = 100


@dataclass(frozen=True)
class MessagePage:
    messages: list[dict[str, Any]]
    last_seq: int  # the room's last seq when the page was read
    has_more: bool  # more messages lie beyond this page in the direction read


def _positive(value: object, name: str, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise Invalid(
            _("%(name)s must be an integer of at least %(minimum)s.")
            % {"name": name, "minimum": minimum},
            field=name,
        )
    return value


def clean_limit(limit: object, *, default: int = HISTORY_DEFAULT_LIMIT) -> int:
    if limit is None:
        return default
    limit = _positive(limit, "limit", minimum=1)
    if limit > HISTORY_MAX_LIMIT:
        raise Invalid(
            _("limit must be at most %(history_max_limit)s.")
            % {"history_max_limit": HISTORY_MAX_LIMIT},
            field="limit",
        )
    return limit


def visible_history(user: User) -> Q:
    """Messages ``user`` may read by their exercises' history visibility, for queries over
    several rooms (whose readability the caller checks): all of a ``shared`` exercise, and in a
    ``joined`` one what was written from the start of their current membership."""
    joined = Membership.objects.filter(
        user=user, removed_at__isnull=True, exercise_id=OuterRef("room__exercise_id")
    ).values("created_at")[:1]
    return Q(room__exercise__history_visibility=HistoryVisibility.SHARED) | Q(
        created_at__gte=Subquery(joined)
    )


def _room_messages(room_access: access.RoomAccess) -> QuerySet[Message]:
    """The room's messages this reader may see (``access.visible_from``)."""
    rows = Message.objects.filter(room=room_access.room)
    boundary = access.visible_from(room_access)
    return rows if boundary is None else rows.filter(created_at__gte=boundary)


def _page_payloads(room_access: access.RoomAccess, rows: list[Message]) -> list[dict[str, Any]]:
    """The rows as message objects; a reply to a message the reader may not see quotes
    nothing of it."""
    messages = payloads.message_payloads(rows, for_auditor=room_access.is_auditor)
    boundary = access.visible_from(room_access)
    replied = {row.reply_to_seq for row in rows if row.reply_to_seq}
    if boundary is not None and replied:
        hidden = set(
            Message.objects.filter(
                room=room_access.room, seq__in=replied, created_at__lt=boundary
            ).values_list("seq", flat=True)
        )
        for message in messages:
            if message.get("reply") and message["reply_to"] in hidden:
                message["reply"] = payloads.hidden_reply_payload(message["reply_to"])
    return messages


def messages_after(
    *, user: User, room_id: int, after_seq: int, limit: int | None = None
) -> MessagePage:
    """Messages with ``seq > after_seq`` in order: what a reconnecting client missed."""
    after_seq = _positive(after_seq, "after_seq", minimum=0)
    limit = settings.LIAISON_SYNC_PAGE_SIZE if limit is None else clean_limit(limit)
    room_access = access.access_room(user, room_id)
    rows = list(
        payloads.with_payload_relations(
            _room_messages(room_access).filter(seq__gt=after_seq).order_by("seq")
        )[: limit + 1]
    )
    has_more = len(rows) > limit
    rows = rows[:limit]
    return MessagePage(
        messages=_page_payloads(room_access, rows),
        last_seq=_last_seq(room_access.room, rows),
        has_more=has_more,
    )


def messages_before(
    *, user: User, room_id: int, before_seq: int | None = None, limit: int | None = None
) -> MessagePage:
    """The newest ``limit`` messages below ``before_seq`` (or the newest of all), in order."""
    if before_seq is not None:
        before_seq = _positive(before_seq, "before_seq", minimum=1)
    limit = clean_limit(limit)
    room_access = access.access_room(user, room_id)
    rows = _room_messages(room_access)
    if before_seq is not None:
        rows = rows.filter(seq__lt=before_seq)
    rows = list(payloads.with_payload_relations(rows.order_by("-seq"))[: limit + 1])
    has_more = len(rows) > limit
    rows = rows[:limit][::-1]
    return MessagePage(
        messages=_page_payloads(room_access, rows),
        last_seq=_last_seq(room_access.room, rows),
        has_more=has_more,
    )


def _last_seq(room: Room, rows: list[Message]) -> int:
    """The room's last seq, at least as new as the rows just read."""
    current = Room.objects.filter(pk=room.pk).values_list("last_seq", flat=True).first() or 0
    return max([current, *(row.seq for row in rows)])


def readable_rooms(user: User) -> Any:
    """Rooms where ``user`` is a current member of a member-visible exercise."""
    return Room.objects.filter(
        exercise__memberships__user=user,
        exercise__memberships__removed_at__isnull=True,
        exercise__status__in=access.MEMBER_VISIBLE_STATUSES,
    ).distinct()


def exercises_for(user: User) -> QuerySet[Exercise]:
    """The exercises a user may see: members their current, non-archived ones; admins and
    auditors every exercise."""
    rooms = Prefetch("rooms", queryset=Room.objects.order_by("name"))
    base = Exercise.objects.prefetch_related("agencies", rooms).order_by("-starts_at", "code")
    if not (user is not None and user.is_authenticated and user.is_active):
        return base.none()
    if user.role in {Role.ADMIN, Role.AUDITOR}:
        return base
    return base.filter(
        memberships__user=user,
        memberships__removed_at__isnull=True,
        status__in=access.MEMBER_VISIBLE_STATUSES,
    ).distinct()


def managed_exercises(user: User) -> QuerySet[Exercise]:
    """The exercises a user may provision (admins) or invite to (coordinators)."""
    base = Exercise.objects.prefetch_related("agencies").order_by("-starts_at", "code")
    if not (user is not None and user.is_authenticated and user.is_active):
        return base.none()
    if user.is_admin:
        return base
    if not user.is_officer:
        return base.none()
    return base.filter(
        memberships__user=user,
        memberships__role=GroupRole.COORDINATOR,
        memberships__removed_at__isnull=True,
        status__in=access.MEMBER_VISIBLE_STATUSES,
    ).distinct()


def current_memberships(exercise: Exercise) -> QuerySet[Membership]:
    return (
        Membership.objects.filter(exercise=exercise, removed_at__isnull=True)
        .select_related("user", "user__agency")
        .order_by("user__agency__name", "user__display_name")
    )


def exercise_roles(user: User) -> dict[int, str]:
    """The user's current group role, per exercise id."""
    return dict(
        Membership.objects.filter(user=user, removed_at__isnull=True).values_list(
            "exercise_id", "role"
        )
    )


def unread_counts(*, user: User) -> dict[int, int]:
    """Per room the user belongs to: messages by others, not deleted, after the read marker."""
    room_ids = list(readable_rooms(user).values_list("pk", flat=True))
    if not room_ids:
        return {}
    marker = ReadMarker.objects.filter(user=user, room_id=OuterRef("room_id")).values(
        "last_read_seq"
    )[:1]
    counts = (
        Message.objects.filter(visible_history(user), room_id__in=room_ids, deleted_at__isnull=True)
        .exclude(sender=user)
        .annotate(read_up_to=Coalesce(Subquery(marker), Value(0), output_field=IntegerField()))
        .filter(seq__gt=F("read_up_to"))
        .values("room_id")
        .annotate(unread=Count("pk"))
    )
    result = dict.fromkeys(room_ids, 0)
    result.update({row["room_id"]: row["unread"] for row in counts})
    return result


def last_read_seq(*, user: User, room: Room) -> int | None:
    """How far ``user`` has read in ``room``; ``None`` before their first read."""
    marker = ReadMarker.objects.filter(user=user, room=room).values_list("last_read_seq", flat=True)
    return marker.first()


def first_room(*, user: User, exercise_id: int) -> Room | None:
    """The exercise's first room that ``user`` may read (its default room, made with it)."""
    return readable_rooms(user).filter(exercise_id=exercise_id).order_by("created_at", "pk").first()


# --- attention: unread messages, mentions, acknowledgements awaited, last activity --------------


def _read_up_to(user: User, room_ref: str) -> Any:
    marker = ReadMarker.objects.filter(user=user, room_id=OuterRef(room_ref)).values(
        "last_read_seq"
    )[:1]
    return Coalesce(Subquery(marker), Value(0), output_field=IntegerField())


def attention_counts(*, user: User, room_ids: list[int] | None = None) -> dict[int, dict[str, Any]]:
    """Per readable room (or the given ones among them): ``unread`` (messages by others, not
    deleted, after the read marker), ``mentions`` (those of them that mention the reader),
    ``acks`` (acknowledgements asked of the reader and not given), ``read_seq``, ``last_seq``,
    ``last_at`` and the reader's ``muted``/``notify_all``. Six queries, whatever the rooms."""
    rooms = readable_rooms(user)
    if room_ids is not None:
        rooms = rooms.filter(pk__in=room_ids)
    room_rows = list(rooms.values_list("pk", "exercise_id", "last_seq"))
    if not room_rows:
        return {}
    ids = [row[0] for row in room_rows]
    unread = dict.fromkeys(ids, 0)
    unread.update(unread_counts_in(user=user, room_ids=ids))
    mentions = dict(
        Mention.objects.filter(
            user=user, message__room_id__in=ids, message__deleted_at__isnull=True
        )
        .annotate(read_up_to=_read_up_to(user, "message__room_id"))
        .filter(message__seq__gt=F("read_up_to"))
        .values("message__room_id")
        .annotate(n=Count("pk"))
        .values_list("message__room_id", "n")
    )
    acks = dict(
        Acknowledgement.objects.filter(
            user=user,
            acknowledged_at__isnull=True,
            request__message__room_id__in=ids,
            request__message__deleted_at__isnull=True,
        )
        .values("request__message__room_id")
        .annotate(n=Count("pk"))
        .values_list("request__message__room_id", "n")
    )
    markers = dict(
        ReadMarker.objects.filter(user=user, room_id__in=ids).values_list(
            "room_id", "last_read_seq"
        )
    )
    # The newest message of each room is the one at the room's last seq (an indexed lookup).
    last_at = dict(
        Message.objects.filter(room_id__in=ids, seq=F("room__last_seq")).values_list(
            "room_id", "created_at"
        )
    )
    preferences = {
        row.room_id: row for row in RoomPreference.objects.filter(user=user, room_id__in=ids)
    }
    result: dict[int, dict[str, Any]] = {}
    for room_id, exercise_id, last_seq in room_rows:
        preference = preferences.get(room_id)
        result[room_id] = {
            "exercise": exercise_id,
            "unread": unread.get(room_id, 0),
            "mentions": mentions.get(room_id, 0),
            "acks": acks.get(room_id, 0),
            "read_seq": markers.get(room_id, 0),
            "last_seq": last_seq,
            "last_at": payloads.iso_utc(last_at.get(room_id), timespec="milliseconds"),
            "muted": bool(preference and preference.muted),
            "notify_all": bool(preference and preference.notify_all),
        }
    return result


def unread_counts_in(*, user: User, room_ids: list[int]) -> dict[int, int]:
    """``unread_counts`` for the given rooms (the caller checked they are readable)."""
    counts = (
        Message.objects.filter(visible_history(user), room_id__in=room_ids, deleted_at__isnull=True)
        .exclude(sender=user)
        .annotate(read_up_to=_read_up_to(user, "room_id"))
        .filter(seq__gt=F("read_up_to"))
        .values("room_id")
        .annotate(unread=Count("pk"))
    )
    return {row["room_id"]: row["unread"] for row in counts}


def attention_exercise_ids(user: User) -> list[int]:
    """The exercises whose rooms' activity the reader's attention socket hears."""
    return sorted(set(readable_rooms(user).values_list("exercise_id", flat=True)))
