"""Errors of the encryption layer. None of them ever yields a wrong plaintext silently."""

from __future__ import annotations


class CryptoError(Exception):
    """Base class for encryption-at-rest failures."""


class KeyringError(CryptoError):
    """The keyring is missing or malformed."""


class UnknownKeyError(CryptoError):
    """A wrapped key names a key-encryption key the keyring does not hold."""


class TamperedError(CryptoError):
    """Ciphertext, nonce or associated data does not authenticate: altered, moved or truncated."""


class ContentShredded(CryptoError):
    """The data key was destroyed by the retention policy; the content is unrecoverable."""

    user_text = "Content destroyed by retention policy."
