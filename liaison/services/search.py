"""An officer's search of their own rooms (docs/api/search.md).

Bodies are sealed, so matching happens here, after decryption, and only ever over messages of
rooms the officer reads now (``selectors.readable_rooms``): a room they left, another exercise,
or a room id they guessed is never opened. Each request decrypts at most ``SCAN_LIMIT``
messages, newest first, and answers at most ``PAGE_SIZE`` results with a cursor to go on from;
the cost is linear in what is scanned, so a search over a long exercise is several requests,
never one unbounded one. Every search is audited as a read (without the query's text).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from liaison import access, audit, crypto, payloads, selectors
from liaison.crypto import records
from liaison.errors import Invalid
from liaison.models import Attachment, Message, MessageKind, MessageRevision, User

PAGE_SIZE = 20
SCAN_LIMIT = 2000
BATCH = 200
QUERY_MIN_CHARS = 2
QUERY_MAX_CHARS = 200
# ISO 6346 container numbers: owner code, category letter, six digits and a check digit; as
# written they may carry spaces or hyphens ("MSKU 441770-2").
CONTAINER_RE = re.compile(r"^[A-Z]{3}[UJZ]\d{7}$")
_SEPARATORS = re.compile(r"[\s\-]")


@dataclass(frozen=True)
class SearchFilters:
    query: str
    room_id: int | None = None
    sender_id: int | None = None
    since: dt.date | None = None
    until: dt.date | None = None
    has_attachment: bool = False
    before: int | None = None  # the cursor: only messages with a smaller id


@dataclass(frozen=True)
class SearchPage:
    results: list[dict[str, Any]]
    next: str | None
    scanned: int


def clean_query(raw: object) -> str:
    text = " ".join(str(raw or "").split())
    if not QUERY_MIN_CHARS <= len(text) <= QUERY_MAX_CHARS:
        raise Invalid(_("The query must be 2 to 200 characters long."), field="q")
    return text


def parse_cursor(raw: object) -> int | None:
    if raw in (None, ""):
        return None
    text = str(raw)
    if not re.fullmatch(r"m[0-9]{1,19}", text):
        raise Invalid(_("The search cursor is not valid; start the search again."), field="before")
    return int(text[1:])


def parse_date(raw: object, name: str) -> dt.date | None:
    if raw in (None, ""):
        return None
    try:
        return dt.date.fromisoformat(str(raw))
    except ValueError:
        raise Invalid(
            _("'%(name)s' must be a date (YYYY-MM-DD).") % {"name": name}, field=name
        ) from None


def _matcher(query: str) -> Any:
    """Every term must appear (case-insensitively); a container number matches however it
    was written (spaces, hyphens)."""
    terms = [term.casefold() for term in query.split()]
    squeezed = _SEPARATORS.sub("", query).upper()
    if CONTAINER_RE.match(squeezed):

        def container(text: str) -> bool:
            return squeezed in _SEPARATORS.sub("", text).upper()

        return container

    def words(text: str) -> bool:
        folded = text.casefold()
        return all(term in folded for term in terms)

    return words


def _current_text(message: Message, revisions: dict[int, MessageRevision]) -> str | None:
    try:
        latest = revisions.get(message.pk)
        if latest is not None:
            return records.open_revision(latest, message)
        return records.open_message_body(message)
    except crypto.CryptoError:
        return None  # shredded or unreadable: nothing to match


def _visible(user: User) -> Q:
    """Messages the officer may read: in their rooms, and within each exercise's history
    visibility (from their joining, in a ``joined`` exercise)."""
    return Q(room__in=selectors.readable_rooms(user)) & selectors.visible_history(user)


def search_messages(
    *, user: User, filters: SearchFilters, via: str = "api", ip: str | None = None
) -> SearchPage:
    """Messages of the officer's rooms matching ``filters``, newest first, one page."""
    query = clean_query(filters.query)
    if filters.room_id is not None:
        access.access_room(user, filters.room_id)  # a room they may not read is a 404
    rows = Message.objects.filter(_visible(user), deleted_at__isnull=True).exclude(
        kind=MessageKind.SYSTEM
    )
    if filters.room_id is not None:
        rows = rows.filter(room_id=filters.room_id)
    if filters.sender_id is not None:
        rows = rows.filter(sender_id=filters.sender_id)
    zone = timezone.get_current_timezone()
    if filters.since is not None:
        rows = rows.filter(created_at__gte=dt.datetime.combine(filters.since, dt.time(), zone))
    if filters.until is not None:
        end = dt.datetime.combine(filters.until + dt.timedelta(days=1), dt.time(), zone)
        rows = rows.filter(created_at__lt=end)
    if filters.has_attachment:
        rows = rows.filter(
            Exists(Attachment.objects.filter(message=OuterRef("pk"), purged_at__isnull=True))
        )
    if filters.before is not None:
        rows = rows.filter(pk__lt=filters.before)
    rows = payloads.with_payload_relations(rows.select_related("room", "room__exercise"))
    matches = _matcher(query)
    found: list[tuple[Message, str]] = []
    scanned = 0
    cursor = filters.before
    exhausted = False
    while len(found) < PAGE_SIZE and scanned < SCAN_LIMIT:
        batch_rows = rows.filter(pk__lt=cursor) if cursor is not None else rows
        batch = list(batch_rows.order_by("-pk")[: min(BATCH, SCAN_LIMIT - scanned)])
        if not batch:
            exhausted = True
            break
        revisions = {}
        for revision in MessageRevision.objects.filter(
            message_id__in=[m.pk for m in batch]
        ).order_by("message_id", "number"):
            revisions[revision.message_id] = revision
        for message in batch:
            scanned += 1
            cursor = message.pk
            text = _current_text(message, revisions)
            if text is not None and matches(text):
                found.append((message, text))
                if len(found) == PAGE_SIZE:
                    break
    more = not exhausted and cursor is not None and rows.filter(pk__lt=cursor).exists()
    extras = payloads.message_extras([message for message, _text in found])
    results = [
        {
            "room": message.room_id,
            "room_title": message.room.title or message.room.name,
            "exercise": message.room.exercise.code,
            "seq": message.seq,
            "kind": message.kind,
            "body": text,
            "created_at": payloads.iso_utc(message.created_at, timespec="milliseconds"),
            "sender": payloads.person_payload(message.sender),
            "reply": extras[message.pk]["reply"],
            "marking": message.marking or None,
            "url": f"/rooms/{message.room_id}/#msg-{message.seq}",
        }
        for message, text in found
    ]
    with transaction.atomic():
        audit.record(
            actor=user,
            action="messages.searched",
            ip=ip,
            via=via,
            room=filters.room_id,
            filters=sorted(
                name
                for name in ("sender_id", "since", "until", "has_attachment", "before")
                if getattr(filters, name)
            ),
            query_chars=len(query),
            scanned=scanned,
            results=len(results),
            seqs=[[message.room_id, message.seq] for message, _text in found],
        )
    return SearchPage(results=results, next=f"m{cursor}" if more else None, scanned=scanned)
