"""Attention: what tells an officer that a room needs them, without a poll.

- Every new message is announced to the attention sockets of its exercise's members
  (``exercise.<id>``: room, seq, sender, kind, no text), so unread counts move live.
- The people a message mentions, asks to acknowledge or replies to are told personally
  (``user.<id>``), and so are their sockets' exact counts when their read marker moves.
- Whoever of them has no open socket is e-mailed, without any message text, at most once per
  room every ``EMAIL_EVERY``, unless they switched e-mail off or muted the room. The e-mail is a
  background job (``notification_email_job``) queued in the same transaction: a slow or absent
  mail server never holds up the thread that stores messages.

Called inside the writing transaction; everything leaves after it commits.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django_tasks import task

from liaison import access, audit, events, payloads, selectors
from liaison.errors import PermissionDenied
from liaison.models import (
    Membership,
    Message,
    MessageKind,
    Presence,
    Room,
    RoomPreference,
    User,
)
from liaison.services import sessions
from liaison.services.mentions import Reach, current_members

logger = logging.getLogger(__name__)

# At most one e-mail per person and room in this interval.
EMAIL_EVERY = dt.timedelta(minutes=15)
# Why someone is told about a message, the most pressing first.
REASONS = ("ack", "mention", "reply", "alert")


@dataclass(frozen=True)
class Told:
    """Who was told personally about a message, and why (user id -> reason)."""

    reasons: dict[int, str]


def _presence_fresh_after() -> dt.datetime:
    """Presence rows older than this belong to a server process that died (as
    ``realtime.presence.stale_before`` counts them)."""
    seconds = 3 * float(settings.LIAISON_WS_PRESENCE_REFRESH_SECONDS) + 5
    return timezone.now() - dt.timedelta(seconds=seconds)


def room_label(room: Room) -> str:
    return room.title or room.name


def announce_message(
    *,
    room: Room,
    message: Message,
    sender: User,
    mentioned: Reach | None,
    addressed: Reach | None,
    parent: Message | None,
) -> Told:
    """After a message is stored: activity to the exercise, a notice to each person it
    mentions, asks to acknowledge or replies to, and e-mail to those of them not connected
    (for an alert: to every member not connected)."""
    events.publish_on_commit(
        events.exercise_group(room.exercise_id),
        events.attention_event(
            events.ATTENTION_ACTIVITY,
            {
                "type": "activity",
                "exercise": room.exercise_id,
                "room": room.pk,
                "seq": message.seq,
                "sender": sender.pk,
                "kind": message.kind,
                "at": payloads.iso_utc(message.created_at, timespec="milliseconds"),
            },
            epoch=room.access_epoch,
        ),
    )
    reasons: dict[int, str] = {}
    if parent is not None and parent.sender_id != sender.pk:
        still_member = Membership.objects.filter(
            exercise_id=room.exercise_id, user_id=parent.sender_id, removed_at__isnull=True
        ).exists()
        if still_member:
            reasons[parent.sender_id] = "reply"
    for reach, reason in ((mentioned, "mention"), (addressed, "ack")):
        if reach is not None:
            reasons.update(dict.fromkeys(reach.people, reason))
    if reasons:
        _tell(room=room, message=message, sender=sender, reasons=reasons)
    emailed = dict(reasons)
    if message.kind == MessageKind.ALERT:
        for membership in current_members(room):
            if membership.user_id != sender.pk:
                emailed.setdefault(membership.user_id, "alert")
    if emailed:
        email_offline(room=room, message=message, reasons=emailed)
    return Told(reasons=reasons)


def _tell(*, room: Room, message: Message, sender: User, reasons: dict[int, str]) -> None:
    """A notice to each person the message is for (most messages are for nobody in particular,
    and build none)."""
    exercise = room.exercise
    frame = {
        "type": "notice",
        "exercise": room.exercise_id,
        "exercise_code": exercise.code,
        "room": room.pk,
        "room_title": room_label(room),
        "seq": message.seq,
        "kind": message.kind,
        "sender": payloads.person_payload(sender),
    }
    for user_id, reason in reasons.items():
        events.publish_on_commit(
            events.user_group(user_id),
            events.attention_event(events.ATTENTION_NOTICE, frame | {"reason": reason}),
        )


# --- e-mail to people with no open socket -------------------------------------------------------


def _subject(reason: str, *, code: str, room: str) -> str:
    values = {"code": code, "room": room}
    if reason == "ack":
        return _("Acknowledgement requested in %(code)s #%(room)s") % values
    if reason == "mention":
        return _("You were mentioned in %(code)s #%(room)s") % values
    if reason == "reply":
        return _("Someone replied to you in %(code)s #%(room)s") % values
    return _("Alert in %(code)s #%(room)s") % values


def _email_text(reason: str, *, code: str, room: str, link: str) -> tuple[str, str]:
    """Subject and body: where and why, and a link; never who wrote what."""
    subject = _subject(reason, code=code, room=room)
    body = _(
        "%(subject)s.\n\nOpen the room to read it:\n%(link)s\n\n"
        "Liaison never puts message text in e-mail. You receive at most one e-mail per room "
        "every 15 minutes; turn these e-mails off on your profile page, or mute the room."
    ) % {"subject": subject, "link": link}
    return subject, body


def email_offline(*, room: Room, message: Message, reasons: dict[int, str]) -> list[int]:
    """E-mail the people in ``reasons`` who have no open socket, want e-mail and have not
    muted the room, at most once per room every ``EMAIL_EVERY``; returns whom. Audited."""
    now = timezone.now()
    online = set(
        Presence.objects.filter(
            user_id__in=list(reasons), last_seen_at__gte=_presence_fresh_after()
        ).values_list("user_id", flat=True)
    )
    muted = set(
        RoomPreference.objects.filter(room=room, user_id__in=list(reasons), muted=True).values_list(
            "user_id", flat=True
        )
    )
    candidates = list(
        User.objects.filter(
            pk__in=[ident for ident in reasons if ident not in online and ident not in muted],
            is_active=True,
            email_notifications=True,
        ).order_by("pk")
    )
    if not candidates:
        return []
    RoomPreference.objects.bulk_create(
        [RoomPreference(user=user, room=room) for user in candidates], ignore_conflicts=True
    )
    chosen: list[User] = []
    for user in candidates:
        claimed = (
            RoomPreference.objects.filter(user=user, room=room)
            .filter(Q(last_emailed_at__isnull=True) | Q(last_emailed_at__lte=now - EMAIL_EVERY))
            .update(last_emailed_at=now)
        )
        if claimed:
            chosen.append(user)
    if not chosen:
        return []
    audit.record(
        actor=None,
        actor_label="system:notifications",
        action="notification.emailed",
        target=message,
        exercise=room.exercise,
        room=room.pk,
        seq=message.seq,
        recipients=[user.pk for user in chosen],
        reasons={str(user.pk): reasons[user.pk] for user in chosen},
    )
    link = settings.LIAISON_BASE_URL.rstrip("/") + reverse("room", args=[room.pk])
    letters = []
    for user in chosen:
        with translation.override(user.language or settings.LANGUAGE_CODE):
            subject, body = _email_text(
                reasons[user.pk], code=room.exercise.code, room=room_label(room), link=link
            )
        letters.append([subject, body, user.email])
    notification_email_job.enqueue(letters)
    return [user.pk for user in chosen]


@task()
def notification_email_job(letters: list[list[str]]) -> dict[str, int]:
    """Send the queued notification e-mails ([subject, body, address] each); returns how many
    went. A failure is logged, not retried: a lost reminder, never a lost message."""
    sent = 0
    for subject, body, address in letters:
        try:
            send_mail(subject, body, None, [address])
            sent += 1
        except Exception:
            logger.exception("a notification e-mail could not be sent")
    return {"sent": sent, "failed": len(letters) - sent}


# --- counts and preferences -----------------------------------------------------------------------


def publish_counts(*, user: User, room_ids: list[int]) -> None:
    """Send the reader's sockets their exact counts for these rooms, after commit."""
    counts = selectors.attention_counts(user=user, room_ids=room_ids)
    if not counts:
        return
    events.publish_on_commit(
        events.user_group(user.pk),
        events.attention_event(events.ATTENTION_COUNTS, counts_frame(counts, full=False)),
    )


def set_room_preferences(
    *, user: User, room_id: int, muted: bool | None = None, notify_all: bool | None = None
) -> dict[str, bool]:
    """Mute a room (no desktop notification, no e-mail from it) or be notified of its every
    message. Members only; auditors read silently and have nothing to mute."""
    room_access = access.access_room(user, room_id)
    if room_access.membership is None:
        raise PermissionDenied(_("Only members of the exercise have room settings."))
    with transaction.atomic():
        preference, _created = RoomPreference.objects.select_for_update().get_or_create(
            user=user, room=room_access.room
        )
        if muted is not None:
            preference.muted = muted
        if notify_all is not None:
            preference.notify_all = notify_all
        preference.save(update_fields=["muted", "notify_all"])
        publish_counts(user=user, room_ids=[room_access.room.pk])
    return {"muted": preference.muted, "notify_all": preference.notify_all}


# --- the attention socket's state ----------------------------------------------------------------


@dataclass(frozen=True)
class AttentionState:
    """What an attention socket holds: the exercises whose activity it hears, each readable
    room's access epoch, the counts, and when the session lapses (or why it is refused)."""

    problem: str | None
    exercise_ids: list[int]
    epochs: dict[int, int]
    counts: dict[int, dict]
    deadline: dt.datetime | None


def attention_state(*, user: User, session_key: str | None) -> AttentionState:
    """Read at connect and whenever the socket's grant may have changed."""
    problem, row = sessions.socket_session(user_id=user.pk, session_key=session_key)
    if problem is not None or row is None:
        return AttentionState(problem or sessions.SESSION_ENDED, [], {}, {}, None)
    rooms = selectors.readable_rooms(user).values_list("pk", "exercise_id", "access_epoch")
    epochs = {room_id: epoch for room_id, _exercise, epoch in rooms}
    exercise_ids = sorted({exercise for _room, exercise, _epoch in rooms})
    return AttentionState(
        problem=None,
        exercise_ids=exercise_ids,
        epochs=epochs,
        counts=selectors.attention_counts(user=user),
        deadline=sessions.session_deadline(row),
    )


def counts_frame(counts: dict[int, dict], *, full: bool) -> dict:
    """The ``counts`` frame: every room when ``full``, else only the rooms that changed."""
    return {"type": "counts", "full": full, "rooms": {str(k): v for k, v in counts.items()}}
