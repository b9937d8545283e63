"""AES-256-GCM for records (messages, revisions, file names), bound to their place.

The associated data names the room, the record kind, the record's identity and the key
version, so a ciphertext copied to another room, message or sender fails to decrypt.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from liaison.crypto import roomkeys
from liaison.crypto.errors import TamperedError
from liaison.models import Room

NONCE_BYTES = 12


@dataclass(frozen=True)
class Sealed:
    """What a record stores: its key version, nonce and ciphertext (tag appended)."""

    key_version: int
    nonce: bytes
    ciphertext: bytes


def associated_data(room_id: int, key_version: int, kind: str, identity: dict[str, Any]) -> bytes:
    """Canonical JSON naming the record's place; any difference fails authentication."""
    return json.dumps(
        {"v": 1, "room": room_id, "key_version": key_version, "kind": kind, "id": identity},
        sort_keys=True,
        separators=(",", ":"),
    ).encode()


def encrypt(
    room: Room | int,
    plaintext: bytes,
    *,
    kind: str,
    identity: dict[str, Any],
    key_version: int | None = None,
) -> Sealed:
    """Seal under the room's newest data key with a fresh random nonce.

    ``key_version`` pins an existing version instead, for records that must share the version
    of a companion (an attachment's name and its streamed blob).
    """
    room_id = room if isinstance(room, int) else room.pk
    if key_version is None:
        version, key = roomkeys.active_key(room_id)
    else:
        version, key = key_version, roomkeys.data_key(room_id, key_version)
    nonce = os.urandom(NONCE_BYTES)
    aad = associated_data(room_id, version, kind, identity)
    return Sealed(version, nonce, AESGCM(key).encrypt(nonce, plaintext, aad))


def decrypt(
    room: Room | int,
    *,
    key_version: int,
    nonce: bytes,
    ciphertext: bytes,
    kind: str,
    identity: dict[str, Any],
) -> bytes:
    """Plaintext, or ``TamperedError`` / ``ContentShredded``; never a wrong plaintext."""
    room_id = room if isinstance(room, int) else room.pk
    if len(nonce) != NONCE_BYTES:
        raise TamperedError(f"{kind} {identity} in room {room_id} has a damaged nonce.")
    key = roomkeys.data_key(room_id, key_version)
    aad = associated_data(room_id, key_version, kind, identity)
    try:
        return AESGCM(key).decrypt(bytes(nonce), bytes(ciphertext), aad)
    except (InvalidTag, ValueError):
        raise TamperedError(
            f"{kind} {identity} in room {room_id} failed to authenticate."
        ) from None
