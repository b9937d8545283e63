"""The tamper-evident audit log: one ``record()`` for every security-relevant action.

Each event is chained: ``hash = SHA-256(prev_hash || canonical JSON of the event)``. Appends are
serialized (a PostgreSQL transaction-scoped advisory lock; SQLite's IMMEDIATE transactions), so
``seq`` is gap-free and the chain has no forks. The table rejects UPDATE and DELETE (migration
0002 installs the triggers).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import json
import logging
import time
from collections.abc import Iterator
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from liaison import metrics
from liaison.models import AuditEvent, Exercise, User

logger = logging.getLogger(__name__)

GENESIS_HASH = "0" * 64
# Arbitrary constant naming the audit append lock among PostgreSQL advisory locks.
AUDIT_LOCK_ID = 0x4C49_4155  # "LIAU"
_NO_OFFSET = dt.timedelta(0)

# Fields of an event that the hash covers, in the canonical form. Only ``hash`` is excluded.
HASHED_FIELDS = (
    "seq",
    "created_at",
    "actor_id",
    "actor_label",
    "action",
    "target_type",
    "target_id",
    "exercise_id",
    "ip",
    "details",
    "prev_hash",
)
# Columns of a raw row as ``iter_raw_rows`` reads them: the hashed fields, then the hash.
RAW_FIELDS = (*HASHED_FIELDS, "hash")


# One encoder, built once: ``canonical`` runs for every event a verification walks.
_CANONICAL_ENCODER = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, check_circular=False
)


def canonical(fields: dict[str, Any]) -> bytes:
    """Canonical JSON: sorted keys, no insignificant white space, UTF-8."""
    return _CANONICAL_ENCODER.encode(fields).encode()


def event_fields(event: AuditEvent) -> dict[str, Any]:
    """The hashed content of an event, as plain JSON values."""
    return {
        "seq": event.seq,
        "created_at": event.created_at.astimezone(dt.UTC).isoformat(timespec="microseconds"),
        "actor_id": event.actor_id,
        "actor_label": event.actor_label,
        "action": event.action,
        "target_type": event.target_type,
        "target_id": event.target_id,
        "exercise_id": event.exercise_id,
        "ip": event.ip,
        "details": event.details,
        "prev_hash": event.prev_hash,
    }


def compute_hash(event: AuditEvent) -> str:
    return hashlib.sha256(event.prev_hash.encode() + canonical(event_fields(event))).hexdigest()


def _lock_chain() -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [AUDIT_LOCK_ID])


def normalise_ip(ip: str | None) -> str | None:
    """The address as the database gives it back (PostgreSQL's ``inet`` rewrites IPv6 and
    IPv4-mapped forms), so the hash computed now still matches the row read later."""
    if not ip:
        return None
    try:
        address = ipaddress.ip_address(str(ip).strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return str(address)


def _target(target: Any) -> tuple[str, str]:
    if target is None:
        return "", ""
    if isinstance(target, tuple):
        kind, ident = target
        return str(kind), str(ident)
    return target.__class__.__name__.lower(), str(target.pk)


def record(
    *,
    actor: User | None,
    action: str,
    target: Any = None,
    exercise: Exercise | None = None,
    ip: str | None = None,
    actor_label: str = "",
    **details: Any,
) -> AuditEvent:
    """Append one event to the chain, in the caller's transaction.

    ``target`` is a model instance or a ``(type, id)`` pair. ``details`` must be JSON-serialisable
    and must never carry message text or file content.
    """
    target_type, target_id = _target(target)
    # Normalise details through JSON so the stored value hashes the same after a round trip.
    clean_details = json.loads(json.dumps(details, default=str, sort_keys=True))
    # No savepoint: the event belongs to the action's transaction and fails with it.
    started = time.perf_counter()
    with transaction.atomic(savepoint=False):
        _lock_chain()
        last = AuditEvent.objects.order_by("-seq").only("seq", "hash").first()
        event = AuditEvent(
            seq=(last.seq + 1) if last else 1,
            created_at=timezone.now(),
            actor=actor if actor is not None and actor.pk else None,
            actor_label=actor_label or (actor.email if actor is not None and actor.pk else ""),
            action=action,
            target_type=target_type,
            target_id=target_id,
            exercise=exercise,
            ip=normalise_ip(ip),
            details=clean_details,
            prev_hash=last.hash if last else GENESIS_HASH,
        )
        event.hash = compute_hash(event)
        event.save(force_insert=True)
        metrics.observe_audit_append(time.perf_counter() - started)
        checkpoint_if_due(event.seq)
    return event


def checkpoint_if_due(seq: int) -> None:
    """The Nth link of the audit chain or of a room's message chain signs every chain's heads,
    so a cut tail never goes further back than N links even between scheduled checkpoints.
    Call in the transaction that appends link ``seq``."""
    every = settings.LIAISON_AUDIT_CHECKPOINT_EVERY
    if every > 0 and seq % every == 0:
        transaction.on_commit(_checkpoint_after_commit, robust=True)


def _checkpoint_after_commit() -> None:
    """After commit: the heads it signs are durable, and a failure to write one never undoes
    the action that triggered it."""
    from liaison.audit import checkpoints

    written = checkpoints.write_checkpoint(if_changed=True)
    if written is not None:
        logger.info(
            "audit checkpoint %s written (every %s events)",
            written.name,
            settings.LIAISON_AUDIT_CHECKPOINT_EVERY,
        )


def record_independently(*, exercise: Exercise | None = None, **fields: Any) -> None:
    """Record an event that is not part of the caller's action (something noticed while
    reading): at once in its own transaction when none is open, otherwise as soon as the open
    one commits, so the chain lock is never taken in the middle of someone else's work."""

    def write() -> None:
        with transaction.atomic():
            record(exercise=exercise, **fields)

    if connection.in_atomic_block:
        transaction.on_commit(write, robust=True)
    else:
        write()


def record_denied(
    *, actor: User | None, error: Exception, ip: str | None, via: str, path: str = ""
) -> None:
    """Record a refused access attempt in its own transaction, so the refusal is kept even
    though the request that caused it fails."""
    target_type = getattr(error, "target_type", "")
    target_id = getattr(error, "target_id", "")
    with transaction.atomic():
        record(
            actor=actor
            if actor is not None and getattr(actor, "is_authenticated", False)
            else None,
            action="access.denied",
            target=(target_type, target_id) if target_type else None,
            ip=ip,
            via=via,
            path=path[:200],
            reason=getattr(error, "code", "denied"),
        )


# The link version new messages are written with (``Message.link_version``).
MESSAGE_LINK_VERSION = 2


def message_link_hash(
    *,
    prev_hash: str,
    room_id: int,
    seq: int,
    sender_id: int,
    created_at: dt.datetime,
    kind: str,
    key_version: int,
    nonce: bytes,
    ciphertext: bytes,
    link_version: int = 1,
    marking: str = "",
    reply_to_seq: int | None = None,
    mentions: dict[str, Any] | None = None,
) -> str:
    """A room's message chain link: SHA-256(prev_hash || canonical JSON of the message).

    The body enters as the digest of its ciphertext, so the chain proves the stored message was
    not altered or removed without revealing (or needing) its text, and still verifies after
    crypto-shredding. From ``link_version`` 2 (``MESSAGE_LINK_VERSION``) the link also covers
    the marking, the seq replied to and the mentions, the message's whole record.
    """
    fields: dict[str, Any] = {
        "room": room_id,
        "seq": seq,
        "sender": sender_id,
        "created_at": created_at.astimezone(dt.UTC).isoformat(timespec="microseconds"),
        "kind": kind,
        "key_version": key_version,
        "body_digest": hashlib.sha256(bytes(nonce) + bytes(ciphertext)).hexdigest(),
    }
    if link_version >= 2:
        fields |= {
            "v": link_version,
            "marking": marking,
            "reply_to": reply_to_seq,
            "mentions": mentions or {},
        }
    return hashlib.sha256(prev_hash.encode() + canonical(fields)).hexdigest()


def message_link_of(message: Any) -> str:
    """The link of a ``Message`` (or anything with its fields) as its own version defines it."""
    return message_link_hash(
        prev_hash=message.prev_hash,
        room_id=message.room_id,
        seq=message.seq,
        sender_id=message.sender_id,
        created_at=message.created_at,
        kind=message.kind,
        key_version=message.key_version,
        nonce=message.nonce,
        ciphertext=message.ciphertext,
        link_version=message.link_version,
        marking=message.marking,
        reply_to_seq=message.reply_to_seq,
        mentions=message.mentions,
    )


# --- reading the chain back, fast (verification) ---------------------------------------------


def iter_raw_rows(*, window: int) -> Iterator[tuple[Any, ...]]:
    """Every audit row in ``seq`` order, raw (``RAW_FIELDS`` order), in windows of seqs.

    Plain SQL, not the ORM: per-row field converters cost more than the hashing itself, and the
    goal is 100,000 events verified in seconds. Windows are ``seq`` ranges, so each is one
    index range scan however long the table (an open-ended ``seq > n ... LIMIT`` makes the
    planner scan and sort); a gap left by a deleted row is jumped with an index-backed MIN().
    The creation time comes back as text already in the hash's form.
    """
    meta = AuditEvent._meta
    quote = connection.ops.quote_name
    quoted = [quote(meta.get_field(name).column) for name in RAW_FIELDS]
    if connection.vendor == "postgresql":
        quoted[1] = (
            f"to_char({quoted[1]} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"+00:00\"')"
        )
    elif connection.vendor == "sqlite":
        quoted[1] = f"CAST({quoted[1]} AS TEXT)"  # skips the driver's timestamp parsing
    table, seq = quote(meta.db_table), quote(meta.get_field("seq").column)
    window_sql = (
        f"SELECT {', '.join(quoted)} FROM {table} "  # noqa: S608 (names from the model)
        f"WHERE {seq} > %s AND {seq} <= %s ORDER BY {seq}"
    )
    next_sql = f"SELECT MIN({seq}) FROM {table} WHERE {seq} > %s"  # noqa: S608
    start = 0
    while True:
        with connection.cursor() as cursor:
            cursor.execute(window_sql, [start, start + window])
            rows = cursor.fetchall()
            if not rows:
                cursor.execute(next_sql, [start])
                following = cursor.fetchone()[0]
                if following is None:
                    return
                start = following - 1
                continue
        yield from rows
        start += window


def canonical_time(value: Any) -> str:
    """The hash's form of ``created_at`` (ISO 8601, UTC, microseconds) from a raw column."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            return value.isoformat(timespec="microseconds") + "+00:00"
        if value.utcoffset() == _NO_OFFSET:
            return value.isoformat(timespec="microseconds")
        return value.astimezone(dt.UTC).isoformat(timespec="microseconds")
    text = str(value)
    if len(text) == 32 and text[10] == "T" and text.endswith("+00:00"):
        return text
    # SQLite keeps Django's naive UTC text: "YYYY-MM-DD HH:MM:SS[.ffffff]".
    if len(text) == 26 and text[10] == " ":
        return f"{text[:10]}T{text[11:]}+00:00"
    if len(text) == 19 and text[10] == " ":
        return f"{text[:10]}T{text[11:]}.000000+00:00"
    parsed = parse_datetime(text)
    if parsed is None:
        return text
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.astimezone(dt.UTC).isoformat(timespec="microseconds")


def json_value(value: Any) -> Any:
    """A raw JSON column as the value it holds (drivers hand back text or already-parsed data)."""
    if isinstance(value, str | bytes | bytearray):
        try:
            return json.loads(value)
        except ValueError:
            return value  # not JSON any more: the hash check reports the row as altered
    return value
