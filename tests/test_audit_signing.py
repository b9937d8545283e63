"""The audit signing key: where it comes from, how a bad one is named, the public-key command."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from liaison.audit import signing as audit_signing


@pytest.fixture
def fresh_signing_key():
    audit_signing.reset_signing_key_cache()
    yield
    audit_signing.reset_signing_key_cache()


def test_development_generates_a_signing_key_under_var_once(
    settings, tmp_path: Path, fresh_signing_key: None
) -> None:
    settings.VAR_DIR = tmp_path
    first = audit_signing.public_key_b64()
    audit_signing.reset_signing_key_cache()
    assert audit_signing.public_key_b64() == first
    key_file = tmp_path / audit_signing.DEV_KEY_FILE_NAME
    assert key_file.stat().st_mode & 0o777 == 0o600


def test_the_signing_key_file_setting_wins(settings, tmp_path: Path, fresh_signing_key) -> None:
    key = Ed25519PrivateKey.generate()
    path = tmp_path / "audit.key"
    path.write_text(_raw_b64(key))
    settings.LIAISON_AUDIT_SIGNING_KEY_FILE = str(path)
    assert audit_signing.public_key_b64() == audit_signing.public_key_b64(key.public_key())


def test_a_pem_signing_key_file_is_accepted(settings, tmp_path: Path, fresh_signing_key) -> None:
    from cryptography.hazmat.primitives import serialization

    key = Ed25519PrivateKey.generate()
    path = tmp_path / "audit.pem"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    settings.LIAISON_AUDIT_SIGNING_KEY_FILE = str(path)
    assert audit_signing.public_key_b64() == audit_signing.public_key_b64(key.public_key())


def _raw_b64(key: Ed25519PrivateKey) -> str:
    from cryptography.hazmat.primitives import serialization

    raw = key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    return base64.b64encode(raw).decode()


def test_the_keyring_can_carry_the_signing_key(settings, tmp_path: Path, fresh_signing_key) -> None:
    import json

    from liaison.crypto.keyring import reset_keyring_cache

    secret = audit_signing.new_private_key_text().strip()
    keyring = {
        "active": "k1",
        "keys": {"k1": base64.b64encode(b"k" * 32).decode()},
        "audit_signing_key": secret,
    }
    settings.LIAISON_KEYRING_JSON = json.dumps(keyring)
    settings.LIAISON_AUDIT_SIGNING_KEY_FILE = ""
    try:
        expected = audit_signing._private_from_text(secret, source="test").public_key()
        assert audit_signing.public_key_b64() == audit_signing.public_key_b64(expected)
    finally:
        reset_keyring_cache()


def test_production_without_a_signing_key_is_refused_clearly(
    settings, fresh_signing_key: None
) -> None:
    import json

    settings.LIAISON_KEYRING_AUTOCREATE = False
    settings.LIAISON_KEYRING_JSON = json.dumps(
        {"active": "k1", "keys": {"k1": base64.b64encode(b"k" * 32).decode()}}
    )
    with pytest.raises(audit_signing.SigningKeyError, match="No audit signing key"):
        audit_signing.load_signing_key()


@pytest.mark.parametrize(
    ("content", "problem"),
    [("not base64!", "base64"), (base64.b64encode(b"short").decode(), "32 bytes")],
)
def test_a_malformed_signing_key_file_is_named(
    settings, tmp_path: Path, fresh_signing_key: None, content: str, problem: str
) -> None:
    path = tmp_path / "audit.key"
    path.write_text(content)
    settings.LIAISON_AUDIT_SIGNING_KEY_FILE = str(path)
    with pytest.raises(audit_signing.SigningKeyError, match=problem):
        audit_signing.load_signing_key()


def test_a_missing_signing_key_file_is_named(settings, tmp_path: Path, fresh_signing_key) -> None:
    settings.LIAISON_AUDIT_SIGNING_KEY_FILE = str(tmp_path / "absent.key")
    with pytest.raises(audit_signing.SigningKeyError, match="does not exist"):
        audit_signing.load_signing_key()


def test_public_key_command_prints_the_key(capsys: pytest.CaptureFixture[str]) -> None:
    from django.core.management import call_command

    call_command("audit", "public-key")
    printed = capsys.readouterr().out.strip()
    assert printed == audit_signing.public_key_b64()
    assert len(base64.b64decode(printed)) == 32
    call_command("audit", "public-key", "--pem")
    assert "BEGIN PUBLIC KEY" in capsys.readouterr().out
