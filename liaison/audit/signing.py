"""The Ed25519 key that signs audit checkpoints and exports.

Where the private key comes from, first match wins:

1. ``LIAISON_AUDIT_SIGNING_KEY_FILE``: a file holding the base64 of the 32-byte raw private key
   (or a PKCS#8 PEM);
2. the keyring: an optional ``"audit_signing_key"`` field (base64, 32 bytes) beside the KEKs;
3. development and tests only: a key generated on first use under ``var/``, like the keyring.

Anyone holding the public key (``manage.py audit public-key``) can check a checkpoint or an
export offline. The private key must not be readable by whoever administers the database, or a
rewritten chain could be signed again.
"""

from __future__ import annotations

import base64
import binascii
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from django.conf import settings
from django.dispatch import receiver
from django.test.signals import setting_changed

from liaison.crypto.errors import KeyringError
from liaison.crypto.keyring import create_private_exclusive

RAW_KEY_BYTES = 32
DEV_KEY_FILE_NAME = "audit-signing-key"

_cached: Ed25519PrivateKey | None = None


class SigningKeyError(KeyringError):
    """The audit signing key is missing or malformed."""


def _private_from_text(text: str, *, source: str) -> Ed25519PrivateKey:
    text = text.strip()
    if text.startswith("-----BEGIN"):
        try:
            key = serialization.load_pem_private_key(text.encode(), password=None)
        except (ValueError, TypeError) as exc:
            raise SigningKeyError(f"{source} is not a readable PEM private key: {exc}.") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise SigningKeyError(f"{source} holds a private key that is not Ed25519.")
        return key
    try:
        raw = base64.b64decode(text, validate=True)
    except binascii.Error:
        raise SigningKeyError(
            f"{source} must hold the base64 of a 32-byte Ed25519 private key, or a PEM key."
        ) from None
    if len(raw) != RAW_KEY_BYTES:
        raise SigningKeyError(f"{source} must decode to {RAW_KEY_BYTES} bytes, not {len(raw)}.")
    return Ed25519PrivateKey.from_private_bytes(raw)


def new_private_key_text() -> str:
    """A fresh private key as the one line of base64 a key file holds."""
    raw = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.Raw,
        serialization.PrivateFormat.Raw,
        serialization.NoEncryption(),
    )
    return base64.b64encode(raw).decode() + "\n"


def dev_key_path() -> Path:
    return Path(settings.VAR_DIR) / DEV_KEY_FILE_NAME


def load_signing_key() -> Ed25519PrivateKey:
    """The configured private key (see the module docstring for the order of sources)."""
    key_file = getattr(settings, "LIAISON_AUDIT_SIGNING_KEY_FILE", "")
    if key_file:
        path = Path(key_file)
        try:
            text = path.read_text()
        except FileNotFoundError:
            raise SigningKeyError(
                f"LIAISON_AUDIT_SIGNING_KEY_FILE={path} does not exist "
                "(python manage.py audit generate-key prints a new key)."
            ) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise SigningKeyError(f"Audit signing key file {path} cannot be read: {exc}.") from None
        return _private_from_text(text, source=str(path))
    from liaison.crypto.keyring import load_keyring

    autocreate = getattr(settings, "LIAISON_KEYRING_AUTOCREATE", False)
    try:
        keyring_raw = load_keyring().raw
    except KeyringError:
        if not autocreate:
            raise
        keyring_raw = {}
    if keyring_raw.get("audit_signing_key"):
        value = keyring_raw["audit_signing_key"]
        if not isinstance(value, str):
            raise SigningKeyError("The keyring's audit_signing_key must be a base64 string.")
        return _private_from_text(value, source="the keyring's audit_signing_key")
    if not autocreate:
        raise SigningKeyError(
            "No audit signing key: set LIAISON_AUDIT_SIGNING_KEY_FILE to a file holding a base64 "
            "Ed25519 private key (python manage.py audit generate-key), or add "
            '"audit_signing_key" to the keyring.'
        )
    path = dev_key_path()
    if not path.exists():
        create_private_exclusive(path, new_private_key_text())
    return _private_from_text(path.read_text(), source=str(path))


def signing_key() -> Ed25519PrivateKey:
    global _cached
    if _cached is None:
        _cached = load_signing_key()
    return _cached


def reset_signing_key_cache() -> None:
    global _cached
    _cached = None


@receiver(setting_changed)
def _signing_setting_changed(*, setting: str, **kwargs: object) -> None:
    if setting.startswith(("LIAISON_AUDIT_SIGNING", "LIAISON_KEYRING", "VAR_DIR")):
        reset_signing_key_cache()


def public_key_b64(key: Ed25519PublicKey | None = None) -> str:
    """The public key as base64 of its 32 raw bytes: what an outside verifier is given."""
    public = key or signing_key().public_key()
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode()


def public_key_pem() -> str:
    return (
        signing_key()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def sign(data: bytes) -> bytes:
    return signing_key().sign(data)


def signature_valid(public_key: Ed25519PublicKey, signature: bytes, data: bytes) -> bool:
    try:
        public_key.verify(signature, data)
    except InvalidSignature:
        return False
    return True
