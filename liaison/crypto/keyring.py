"""Key-encryption keys (KEKs), kept outside the database.

The keyring is JSON ``{"active": "<id>", "keys": {"<id>": "<base64 32 bytes>"}}`` from
``LIAISON_KEYRING_FILE`` or the ``LIAISON_KEYRING`` variable. Several KEKs may be present; only
the active one wraps, the others only unwrap (until retired after ``keys rotate-kek``).

``KeyWrapper`` is the seam where a KMS or Vault backend would replace the local keyring.

A keyring file is re-read when it changes on disk, so every worker picks up a KEK added or
retired by ``manage.py keys`` without a restart (and never keeps wrapping under a retired KEK).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import os
import re
import secrets
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.dispatch import receiver
from django.test.signals import setting_changed

from liaison.crypto.errors import KeyringError, TamperedError, UnknownKeyError

KEY_BYTES = 32
NONCE_BYTES = 12
# A KEK id is stored beside every wrapped key (RoomKey.kek_id, 64 characters at most).
KEK_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")
KEYRING_SHAPE = '{"active": "<id>", "keys": {"<id>": "<base64 of 32 random bytes>"}}'


class KeyWrapper(Protocol):
    """Wraps and unwraps data keys; ``context`` is authenticated, never stored with the blob."""

    @property
    def active_id(self) -> str: ...

    @property
    def kek_ids(self) -> list[str]: ...

    def wrap(self, dek: bytes, context: bytes) -> tuple[str, bytes]: ...

    def unwrap(self, kek_id: str, blob: bytes, context: bytes) -> bytes: ...


@dataclass
class LocalKeyring:
    """KEKs held in process memory, loaded from a file or the environment."""

    active_id: str
    keys: dict[str, bytes] = field(repr=False)
    raw: dict[str, Any] = field(repr=False)

    @classmethod
    def from_json(cls, text: str, *, source: str = "keyring") -> LocalKeyring:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise KeyringError(
                f"{source} is not valid JSON ({exc.msg} at line {exc.lineno}); expected {KEYRING_SHAPE}."
            ) from None
        if not isinstance(data, dict) or not isinstance(data.get("keys"), dict):
            raise KeyringError(f"{source} must be a JSON object {KEYRING_SHAPE}.")
        if not data["keys"]:
            raise KeyringError(f"{source} holds no keys; expected {KEYRING_SHAPE}.")
        keys: dict[str, bytes] = {}
        for kek_id, encoded in data["keys"].items():
            if not KEK_ID_PATTERN.fullmatch(kek_id):
                raise KeyringError(
                    f"{source}: key id {kek_id!r} must be 1-64 letters, digits or . _ : - "
                    "(starting with a letter or digit)."
                )
            if not isinstance(encoded, str):
                raise KeyringError(f"{source}: key {kek_id!r} must be a base64 string.")
            try:
                key = base64.b64decode(encoded, validate=True)
            except binascii.Error:
                raise KeyringError(f"{source}: key {kek_id!r} is not valid base64.") from None
            if len(key) != KEY_BYTES:
                raise KeyringError(
                    f"{source}: key {kek_id!r} must decode to {KEY_BYTES} bytes, not {len(key)}."
                )
            keys[kek_id] = key
        active = data.get("active")
        if not isinstance(active, str) or active not in keys:
            raise KeyringError(
                f"{source}: the active key {active!r} is not among its keys ({', '.join(sorted(keys))})."
            )
        return cls(active_id=active, keys=keys, raw=data)

    @property
    def kek_ids(self) -> list[str]:
        return sorted(self.keys)

    def wrap(self, dek: bytes, context: bytes) -> tuple[str, bytes]:
        nonce = os.urandom(NONCE_BYTES)
        sealed = AESGCM(self.keys[self.active_id]).encrypt(nonce, dek, context)
        return self.active_id, nonce + sealed

    def unwrap(self, kek_id: str, blob: bytes, context: bytes) -> bytes:
        kek = self.keys.get(kek_id)
        if kek is None:
            raise UnknownKeyError(
                f"The keyring holds no key-encryption key {kek_id!r} "
                f"(it holds {', '.join(sorted(self.keys))}); was it retired too early?"
            )
        try:
            return AESGCM(kek).decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], context)
        except (InvalidTag, ValueError):
            raise TamperedError(
                f"A data key wrapped by {kek_id!r} failed to authenticate (altered or moved)."
            ) from None


# --- keyring documents (what ``manage.py keys`` writes) ------------------------------------------


def _new_kek_id() -> str:
    return f"kek-{secrets.token_hex(4)}"


def _dump(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=2) + "\n"


def new_keyring_json(kek_id: str | None = None) -> str:
    """A fresh keyring document holding one random KEK."""
    kek_id = kek_id or _new_kek_id()
    if not KEK_ID_PATTERN.fullmatch(kek_id):
        raise KeyringError(f"{kek_id!r} is not a valid key id.")
    key = base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode()
    return _dump({"active": kek_id, "keys": {kek_id: key}})


def add_key_json(
    text: str, kek_id: str | None = None, *, activate: bool = True, source: str = "keyring"
) -> tuple[str, str]:
    """The keyring with one more, freshly generated KEK (active by default), and its id.

    Older KEKs stay, so everything they wrapped still unwraps until ``keys rotate-kek``.
    """
    data = LocalKeyring.from_json(text, source=source).raw
    kek_id = kek_id or _new_kek_id()
    if not KEK_ID_PATTERN.fullmatch(kek_id):
        raise KeyringError(f"{kek_id!r} is not a valid key id.")
    if kek_id in data["keys"]:
        raise KeyringError(f"{source} already holds a key {kek_id!r}.")
    data["keys"][kek_id] = base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode()
    if activate:
        data["active"] = kek_id
    return _dump(data), kek_id


def remove_key_json(text: str, kek_id: str, *, source: str = "keyring") -> str:
    """The keyring without ``kek_id``. Never the active key: something must still wrap."""
    data = LocalKeyring.from_json(text, source=source).raw
    if kek_id not in data["keys"]:
        raise UnknownKeyError(f"{source} holds no key {kek_id!r}.")
    if data["active"] == kek_id:
        raise KeyringError(
            f"{kek_id!r} is the active key of {source}; add a new active key (keys add-kek) "
            "and re-wrap (keys rotate-kek) before retiring it."
        )
    del data["keys"][kek_id]
    return _dump(data)


def _private_temp(path: Path, text: str) -> Path:
    """A complete, fsynced, owner-only copy of ``text`` beside ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o600)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Path(tmp)


def write_private(path: Path, text: str) -> None:
    """Replace ``path`` atomically with owner-only permissions (readers never see half a file)."""
    tmp = _private_temp(path, text)
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def create_private_exclusive(path: Path, text: str) -> None:
    """Create ``path`` (owner-only) only if absent: two processes starting at once agree on one
    file, whichever wrote first."""
    tmp = _private_temp(path, text)
    try:
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


# --- the configured keyring ----------------------------------------------------------------------


def keyring_file() -> Path | None:
    """The keyring file in use, or ``None`` when the keyring comes from ``LIAISON_KEYRING``."""
    if settings.LIAISON_KEYRING_JSON or not settings.LIAISON_KEYRING_FILE:
        return None
    return Path(settings.LIAISON_KEYRING_FILE)


def read_keyring_file(path: Path) -> str:
    try:
        return path.read_text()
    except FileNotFoundError:
        raise KeyringError(f"Keyring file {path} does not exist.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise KeyringError(f"Keyring file {path} cannot be read: {exc}.") from None


def load_keyring() -> LocalKeyring:
    """The configured keyring; in development it is generated on first use under var/."""
    if settings.LIAISON_KEYRING_JSON:
        return LocalKeyring.from_json(settings.LIAISON_KEYRING_JSON, source="LIAISON_KEYRING")
    path = keyring_file()
    if path is None:
        raise KeyringError("No keyring configured: set LIAISON_KEYRING_FILE or LIAISON_KEYRING.")
    if not path.exists() and getattr(settings, "LIAISON_KEYRING_AUTOCREATE", False):
        create_private_exclusive(path, new_keyring_json("dev-1"))
    return LocalKeyring.from_json(read_keyring_file(path), source=str(path))


_cached: LocalKeyring | None = None
_cached_stamp: tuple[int, int] | None = None


def _file_stamp() -> tuple[int, int] | None:
    path = keyring_file()
    if path is None:
        return None
    try:
        stat = path.stat()
    except OSError:
        return None  # vanished after loading: keep the keys already in memory
    return stat.st_mtime_ns, stat.st_size


def get_keyring() -> KeyWrapper:
    """The keyring, cached; a keyring file that changed on disk is loaded again."""
    global _cached, _cached_stamp
    stamp = _file_stamp()
    if _cached is None or (stamp is not None and stamp != _cached_stamp):
        _cached = load_keyring()
        _cached_stamp = _file_stamp()
    return _cached


def reset_keyring_cache() -> None:
    """Forget the loaded keyring and every unwrapped data key (after rotation, in tests)."""
    global _cached, _cached_stamp
    _cached = None
    _cached_stamp = None
    from liaison.crypto import roomkeys

    roomkeys.clear_cache()


@receiver(setting_changed)
def _keyring_setting_changed(*, setting: str, **kwargs: Any) -> None:
    if setting.startswith("LIAISON_KEYRING"):
        reset_keyring_cache()
