"""Key-encryption keys (KEKs), kept outside the database.

The keyring is JSON ``{"active": "<id>", "keys": {"<id>": "<base64 32 bytes>"}}`` from
``LIAISON_KEYRING_FILE`` or the ``LIAISON_KEYRING`` variable. Several KEKs may be present; only
the active one wraps, the others only unwrap (until retired after ``keys rotate-kek``).

``KeyWrapper`` is the seam where a KMS or Vault backend would replace the local keyring.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings

from liaison.crypto.errors import KeyringError, TamperedError, UnknownKeyError

KEY_BYTES = 32
NONCE_BYTES = 12


class KeyWrapper(Protocol):
    active_id: str

    def wrap(self, dek: bytes, context: bytes) -> tuple[str, bytes]: ...

    def unwrap(self, kek_id: str, blob: bytes, context: bytes) -> bytes: ...


@dataclass
class LocalKeyring:
    """KEKs held in process memory, loaded from a file or the environment."""

    active_id: str
    keys: dict[str, bytes]
    raw: dict

    @classmethod
    def from_json(cls, text: str, *, source: str = "keyring") -> LocalKeyring:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise KeyringError(f"{source} is not valid JSON: {exc.msg}.") from None
        if not isinstance(data, dict) or not isinstance(data.get("keys"), dict):
            raise KeyringError(f'{source} must be an object {{"active": id, "keys": {{id: key}}}}.')
        keys: dict[str, bytes] = {}
        for kek_id, encoded in data["keys"].items():
            try:
                key = base64.b64decode(encoded, validate=True)
            except (binascii.Error, TypeError):
                raise KeyringError(f"{source}: key {kek_id!r} is not valid base64.") from None
            if len(key) != KEY_BYTES:
                raise KeyringError(f"{source}: key {kek_id!r} must be 32 bytes, not {len(key)}.")
            keys[str(kek_id)] = key
        active = data.get("active")
        if active not in keys:
            raise KeyringError(f"{source}: the active key {active!r} is not among its keys.")
        return cls(active_id=active, keys=keys, raw=data)

    def wrap(self, dek: bytes, context: bytes) -> tuple[str, bytes]:
        nonce = os.urandom(NONCE_BYTES)
        sealed = AESGCM(self.keys[self.active_id]).encrypt(nonce, dek, context)
        return self.active_id, nonce + sealed

    def unwrap(self, kek_id: str, blob: bytes, context: bytes) -> bytes:
        kek = self.keys.get(kek_id)
        if kek is None:
            raise UnknownKeyError(f"The keyring holds no key-encryption key {kek_id!r}.")
        try:
            return AESGCM(kek).decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], context)
        except Exception:
            raise TamperedError("A wrapped data key failed to authenticate.") from None


def new_keyring_json(kek_id: str | None = None) -> str:
    kek_id = kek_id or f"kek-{secrets.token_hex(4)}"
    key = base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode()
    return json.dumps({"active": kek_id, "keys": {kek_id: key}}, indent=2)


def add_key_json(text: str, kek_id: str | None = None, *, activate: bool = True) -> str:
    """A keyring with one more, freshly generated KEK (active by default)."""
    data = json.loads(text)
    kek_id = kek_id or f"kek-{secrets.token_hex(4)}"
    if kek_id in data["keys"]:
        raise KeyringError(f"The keyring already holds {kek_id!r}.")
    data["keys"][kek_id] = base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode()
    if activate:
        data["active"] = kek_id
    return json.dumps(data, indent=2)


def write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)


_cached: LocalKeyring | None = None


def load_keyring() -> LocalKeyring:
    """The configured keyring; in development it is generated on first use under var/."""
    if settings.LIAISON_KEYRING_JSON:
        return LocalKeyring.from_json(settings.LIAISON_KEYRING_JSON, source="LIAISON_KEYRING")
    if not settings.LIAISON_KEYRING_FILE:
        raise KeyringError("No keyring configured: set LIAISON_KEYRING_FILE or LIAISON_KEYRING.")
    path = Path(settings.LIAISON_KEYRING_FILE)
    if not path.exists():
        if not getattr(settings, "LIAISON_KEYRING_AUTOCREATE", False):
            raise KeyringError(f"Keyring file {path} does not exist.")
        write_private(path, new_keyring_json("dev-1"))
    return LocalKeyring.from_json(path.read_text(), source=str(path))


def get_keyring() -> KeyWrapper:
    global _cached
    if _cached is None:
        _cached = load_keyring()
    return _cached


def reset_keyring_cache() -> None:
    """Forget the loaded keyring and every unwrapped data key (after rotation, in tests)."""
    global _cached
    _cached = None
    from liaison.crypto import roomkeys

    roomkeys.clear_cache()
