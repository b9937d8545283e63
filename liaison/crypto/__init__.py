"""Encryption at rest: envelope encryption with per-room data keys (DESIGN.md section 4).

Import from here: ``from liaison import crypto``; ``crypto.encrypt(...)``.
"""

from liaison.crypto.aead import Sealed, associated_data, decrypt, encrypt
from liaison.crypto.errors import (
    ContentShredded,
    CryptoError,
    KeyringError,
    TamperedError,
    UnknownKeyError,
)
from liaison.crypto.keyring import get_keyring, load_keyring, reset_keyring_cache
from liaison.crypto.roomkeys import (
    active_key,
    data_key,
    destroy_room_keys,
    rewrap_all_keys,
    rotate_room_key,
)
from liaison.crypto.streaming import StreamEncryptor, decrypt_stream, encrypt_stream

__all__ = [
    "ContentShredded",
    "CryptoError",
    "KeyringError",
    "Sealed",
    "StreamEncryptor",
    "TamperedError",
    "UnknownKeyError",
    "active_key",
    "associated_data",
    "data_key",
    "decrypt",
    "decrypt_stream",
    "destroy_room_keys",
    "encrypt",
    "encrypt_stream",
    "get_keyring",
    "load_keyring",
    "reset_keyring_cache",
    "rewrap_all_keys",
    "rotate_room_key",
]
