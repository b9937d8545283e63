"""Shared pieces of the audit tests: lifting the append-only
triggers the way an attacker with database rights would, and a few messages."""

from __future__ import annotations

import importlib
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection

from liaison import audit
from liaison.models import AuditEvent, Message, Room, User
from liaison.services import messaging

TRIGGERS = importlib.import_module("liaison.migrations.0002_audit_append_only")


@contextmanager
def triggers_lifted() -> Iterator[None]:
    """Drop the append-only triggers (as someone with DDL rights could), then put them back."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(TRIGGERS.PG_REMOVE)
        else:
            for statement in TRIGGERS.SQLITE_REMOVE:
                cursor.execute(statement)
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute(TRIGGERS.PG_INSTALL)
            else:
                for statement in TRIGGERS.SQLITE_INSTALL:
                    cursor.execute(statement)


def record_events(count: int, *, actor: User | None = None, action: str = "test.event") -> None:
    for number in range(count):
        audit.record(actor=actor, action=action, target=("thing", number), n=number)


def rehash_from(seq: int) -> None:
    """Recompute every hash from ``seq`` on (triggers must be lifted): a rewritten chain that
    is internally consistent again."""
    previous = AuditEvent.objects.filter(seq=seq - 1).values_list("hash", flat=True).first()
    previous = previous or audit.GENESIS_HASH
    for event in AuditEvent.objects.filter(seq__gte=seq).order_by("seq"):
        event.prev_hash = previous
        event.hash = audit.compute_hash(event)
        AuditEvent.objects.filter(pk=event.pk).update(prev_hash=event.prev_hash, hash=event.hash)
        previous = event.hash


def say(user: User, room: Room, *texts: str) -> list[Message]:
    """Messages sent through the messaging service, in order."""
    sent = []
    for text in texts:
        result = messaging.send_message(
            sender=user,
            room_id=room.pk,
            client_id=uuid.uuid4().hex,
            body=text,
        )
        sent.append(result.message)
    return sent


def head_seq() -> int:
    return AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0
