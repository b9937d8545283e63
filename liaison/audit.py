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
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from liaison.models import AuditEvent, Exercise, User

GENESIS_HASH = "0" * 64
# Arbitrary constant naming the audit append lock among PostgreSQL advisory locks.
AUDIT_LOCK_ID = 0x4C49_4155  # "LIAU"

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
    with transaction.atomic():
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
    return event


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
) -> str:
    """A room's message chain link: SHA-256(prev_hash || canonical JSON of the message).

    The body enters as the digest of its ciphertext, so the chain proves the stored message was
    not altered or removed without revealing (or needing) its text, and still verifies after
    crypto-shredding.
    """
    fields = {
        "room": room_id,
        "seq": seq,
        "sender": sender_id,
        "created_at": created_at.astimezone(dt.UTC).isoformat(timespec="microseconds"),
        "kind": kind,
        "key_version": key_version,
        "body_digest": hashlib.sha256(bytes(nonce) + bytes(ciphertext)).hexdigest(),
    }
    return hashlib.sha256(prev_hash.encode() + canonical(fields)).hexdigest()
