"""Signed checkpoints of the audit chain and the rooms' message chains, kept outside the database.

A hash chain alone does not stop someone with database rights from cutting its tail or
recomputing it after an edit. A checkpoint (like a Certificate Transparency signed tree head)
records the head ``seq`` and hash of the audit chain and of every room's message chain at a
moment, signed with the audit Ed25519 key, in ``storages["audit_checkpoints"]`` (a directory by
default; any Django storage, ideally write-once, by setting). ``manage.py audit verify`` then
checks that the chain still reaches every checkpoint with the same hash.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from django.core.files.base import ContentFile
from django.core.files.storage import Storage, storages
from django.utils import timezone

from liaison.audit import signing
from liaison.audit.chain import GENESIS_HASH, canonical
from liaison.models import AuditEvent, Room

STORAGE_ALIAS = "audit_checkpoints"
FORMAT = "liaison-audit-checkpoint"
FORMAT_VERSION = 1
PREFIX = "checkpoint-"
SUFFIX = ".json"


def checkpoint_storage() -> Storage:
    return storages[STORAGE_ALIAS]


@dataclass(frozen=True)
class Checkpoint:
    """One signed checkpoint as read back from storage."""

    name: str
    body: dict[str, Any]
    signature: bytes

    @property
    def audit_seq(self) -> int:
        return int(self.body["audit"]["seq"])

    @property
    def audit_hash(self) -> str:
        return str(self.body["audit"]["hash"])

    @property
    def rooms(self) -> dict[int, tuple[int, str]]:
        return {int(k): (int(v["seq"]), str(v["hash"])) for k, v in self.body["rooms"].items()}

    @property
    def created_at(self) -> str:
        return str(self.body.get("created_at", ""))

    def signature_valid(self, public_key: Ed25519PublicKey) -> bool:
        return signing.signature_valid(public_key, self.signature, canonical(self.body))


class CheckpointUnreadable(Exception):
    """A file in the checkpoint store that is not a well-formed checkpoint."""

    def __init__(self, name: str, problem: str) -> None:
        super().__init__(f"{name}: {problem}")
        self.name = name
        self.problem = problem


def current_heads() -> dict[str, Any]:
    """The head of the audit chain and of every room's message chain, as of now.

    Each chain is read on its own (no snapshot across chains is needed): every value is a true
    past state of its own chain, which is all that verification compares.
    """
    last = AuditEvent.objects.order_by("-seq").values_list("seq", "hash").first()
    audit_head = {"seq": last[0], "hash": last[1]} if last else {"seq": 0, "hash": GENESIS_HASH}
    rooms = {
        str(room_id): {"seq": seq, "hash": head}
        for room_id, seq, head in Room.objects.order_by("pk").values_list(
            "pk", "last_seq", "chain_head"
        )
    }
    return {"audit": audit_head, "rooms": rooms}


def _name_for(seq: int, when: dt.datetime) -> str:
    stamp = when.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
    return f"{PREFIX}{seq:012d}-{stamp}{SUFFIX}"


def write_checkpoint(*, if_changed: bool = False) -> Checkpoint | None:
    """Sign the current heads and store them. With ``if_changed``, skip (return ``None``) when
    nothing moved since the latest checkpoint, so a frequent timer does not pile up copies."""
    heads = current_heads()
    if if_changed:
        try:
            latest = latest_checkpoint()
        except CheckpointUnreadable:
            latest = None  # verification reports it; a fresh checkpoint is still worth writing
        if (
            latest is not None
            and {
                "audit": latest.body.get("audit"),
                "rooms": latest.body.get("rooms"),
            }
            == heads
        ):
            return None
    now = timezone.now()
    body = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "created_at": now.astimezone(dt.UTC).isoformat(timespec="microseconds"),
        "audit": heads["audit"],
        "rooms": heads["rooms"],
        "public_key": signing.public_key_b64(),
    }
    signature = signing.sign(canonical(body))
    document = {"checkpoint": body, "signature": base64.b64encode(signature).decode()}
    name = _name_for(heads["audit"]["seq"], now)
    stored = checkpoint_storage().save(
        name, ContentFile(json.dumps(document, indent=2, sort_keys=True).encode())
    )
    return Checkpoint(name=stored, body=body, signature=signature)


def checkpoint_names() -> list[str]:
    """Every checkpoint file name, oldest first (names sort by head seq, then time)."""
    storage = checkpoint_storage()
    try:
        _, files = storage.listdir("")
    except FileNotFoundError:
        return []
    return sorted(n for n in files if n.startswith(PREFIX) and n.endswith(SUFFIX))


def read_checkpoint(name: str) -> Checkpoint:
    """Parse one stored checkpoint (the signature is checked by the caller)."""
    try:
        with checkpoint_storage().open(name, "rb") as handle:
            document = json.loads(handle.read())
    except (OSError, ValueError) as exc:
        raise CheckpointUnreadable(name, f"not readable JSON ({exc})") from None
    try:
        body = document["checkpoint"]
        signature = base64.b64decode(document["signature"], validate=True)
        int(body["audit"]["seq"])
        str(body["audit"]["hash"])
        for value in body["rooms"].values():
            int(value["seq"])
            str(value["hash"])
    except (KeyError, TypeError, ValueError, AttributeError, binascii.Error):
        raise CheckpointUnreadable(name, "not a checkpoint document") from None
    if body.get("format") != FORMAT:
        raise CheckpointUnreadable(name, f"format is not {FORMAT}")
    return Checkpoint(name=name, body=body, signature=signature)


def latest_checkpoint() -> Checkpoint | None:
    names = checkpoint_names()
    return read_checkpoint(names[-1]) if names else None
