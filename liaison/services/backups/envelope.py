"""The backup file format: archive sealed to the operator's X25519 key, and its manifest names."""

from __future__ import annotations

import base64
import binascii
import io
import json
import shutil
import tarfile
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings

from liaison.crypto.errors import TamperedError
from liaison.crypto.streaming import StreamEncryptor, decrypt_stream

MAGIC = b"LIAISON-BACKUP01"
KEY_BYTES = 32
HEADER_BYTES = len(MAGIC) + 2 * KEY_BYTES
HKDF_INFO = b"liaison/backup/v1"
FORMAT = "liaison-backup"
FORMAT_VERSION = 1
IDENTITY_PREFIX = "LIAISON-BACKUP-IDENTITY-1:"

MANIFEST = "manifest.json"
PG_DUMP_NAME = "database/liaison.pgdump"
SQLITE_NAME = "database/liaison.sqlite3"
ATTACHMENTS = "attachments"
CHECKPOINTS = "checkpoints"
ATTACHMENT_STORE = "attachments"
CHECKPOINT_STORE = "audit_checkpoints"


class BackupError(Exception):
    """A backup could not be written, opened or restored; the message says why."""


# --- operator keys ----------------------------------------------------------------------------


def _raw_public(key: X25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def public_key_text(key: X25519PublicKey) -> str:
    return base64.b64encode(_raw_public(key)).decode()


def new_identity() -> tuple[str, str]:
    """A new operator key pair: (the private identity file's text, the public key)."""
    private = X25519PrivateKey.generate()
    raw = private.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    public = public_key_text(private.public_key())
    text = (
        "# Liaison backup identity: the private key that opens backups. Keep it offline.\n"
        f"# public key (LIAISON_BACKUP_RECIPIENT): {public}\n"
        f"{IDENTITY_PREFIX}{base64.b64encode(raw).decode()}\n"
    )
    return text, public


def parse_identity(text: str) -> X25519PrivateKey:
    for line in text.splitlines():
        line = line.strip()
        if line.startswith(IDENTITY_PREFIX):
            try:
                raw = base64.b64decode(line[len(IDENTITY_PREFIX) :], validate=True)
            except binascii.Error:
                break
            if len(raw) == KEY_BYTES:
                return X25519PrivateKey.from_private_bytes(raw)
            break
    raise BackupError("Not a Liaison backup identity file (manage.py backup --generate-key).")


def load_identity(path: str | Path) -> X25519PrivateKey:
    try:
        return parse_identity(Path(path).read_text())
    except OSError as exc:
        raise BackupError(f"The identity file {path} cannot be read: {exc.strerror}.") from None


def parse_recipient(text: str) -> X25519PublicKey:
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except binascii.Error:
        raw = b""
    if len(raw) != KEY_BYTES:
        raise BackupError(
            "The backup recipient must be the base64 X25519 public key printed by "
            "manage.py backup --generate-key."
        )
    return X25519PublicKey.from_public_bytes(raw)


def configured_recipient() -> X25519PublicKey:
    value = getattr(settings, "LIAISON_BACKUP_RECIPIENT", "")
    if not value:
        raise BackupError(
            "No backup recipient: set LIAISON_BACKUP_RECIPIENT to the operator's public key "
            "(manage.py backup --generate-key FILE makes a key pair) or pass --recipient."
        )
    return parse_recipient(value)


def _stream_key(shared: bytes, ephemeral: bytes, recipient: bytes) -> bytes:
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=ephemeral + recipient, info=HKDF_INFO
    ).derive(shared)


# --- the encrypted tar stream -------------------------------------------------------------------


class _EncryptingWriter(io.RawIOBase):
    """A write-only file: what tarfile writes is sealed chunk by chunk into ``out``."""

    def __init__(self, out: BinaryIO, recipient: X25519PublicKey) -> None:
        super().__init__()
        ephemeral = X25519PrivateKey.generate()
        ephemeral_raw = _raw_public(ephemeral.public_key())
        recipient_raw = _raw_public(recipient)
        header = MAGIC + ephemeral_raw + recipient_raw
        key = _stream_key(ephemeral.exchange(recipient), ephemeral_raw, recipient_raw)
        self._encryptor = StreamEncryptor(key, context=header)
        self._out = out
        self._out.write(header)
        self.bytes_in = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        data = bytes(data)
        self.bytes_in += len(data)
        sealed = self._encryptor.update(data)
        if sealed:
            self._out.write(sealed)
        return len(data)

    def finish(self) -> None:
        self._out.write(self._encryptor.finalize())
        self._out.flush()


class _DecryptingReader(io.RawIOBase):
    """A read-only file over the plaintext of an encrypted backup (fails on any tampering)."""

    def __init__(self, source: BinaryIO, identity: X25519PrivateKey) -> None:
        super().__init__()
        header = source.read(HEADER_BYTES)
        if len(header) != HEADER_BYTES or not header.startswith(MAGIC):
            raise BackupError("Not a Liaison backup, or its header is damaged.")
        ephemeral_raw = header[len(MAGIC) : len(MAGIC) + KEY_BYTES]
        recipient_raw = header[len(MAGIC) + KEY_BYTES :]
        if recipient_raw != _raw_public(identity.public_key()):
            raise BackupError(
                "This backup was encrypted to another operator key "
                f"({base64.b64encode(recipient_raw).decode()})."
            )
        shared = identity.exchange(X25519PublicKey.from_public_bytes(ephemeral_raw))
        key = _stream_key(shared, ephemeral_raw, recipient_raw)
        self._chunks = decrypt_stream(key, source, context=header)
        self._buffer = b""
        self._done = False

    def readable(self) -> bool:
        return True

    def readinto(self, target: Any) -> int:
        while not self._buffer and not self._done:
            try:
                self._buffer = next(self._chunks)
            except StopIteration:
                self._done = True
            except TamperedError as exc:
                raise BackupError(f"The backup file is damaged or was altered: {exc}") from None
        size = min(len(target), len(self._buffer))
        target[:size] = self._buffer[:size]
        self._buffer = self._buffer[size:]
        return size


class _Packer:
    """Adds members to the encrypted tar stream, each with a fixed, harmless header."""

    def __init__(self, out: BinaryIO, recipient: X25519PublicKey) -> None:
        self._writer = _EncryptingWriter(out, recipient)
        self._tar = tarfile.open(fileobj=self._writer, mode="w|", format=tarfile.PAX_FORMAT)  # noqa: SIM115
        self.files = 0

    def add(self, name: str, handle: BinaryIO, size: int) -> None:
        info = tarfile.TarInfo(name)
        info.size = size
        info.mode = 0o600
        info.mtime = 0
        self._tar.addfile(info, handle)
        self.files += 1

    def add_bytes(self, name: str, data: bytes) -> None:
        self.add(name, io.BytesIO(data), len(data))

    def close(self) -> int:
        self._tar.close()
        self._writer.finish()
        return self._writer.bytes_in


def _safe_member(name: str) -> PurePosixPath:
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or not path.parts:
        raise BackupError(f"The backup holds an unsafe path: {name!r}.")
    return path


def extract(source: BinaryIO, identity: X25519PrivateKey, into: Path) -> dict[str, Any]:
    """Decrypt and unpack a backup into the (empty, private) folder ``into``; its manifest."""
    reader = io.BufferedReader(_DecryptingReader(source, identity), buffer_size=1024 * 1024)
    try:
        with tarfile.open(fileobj=reader, mode="r|") as archive:
            for member in archive:
                path = _safe_member(member.name)
                if not member.isfile():
                    raise BackupError(f"The backup holds something other than a file: {path}.")
                target = into.joinpath(*path.parts)
                target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                handle = archive.extractfile(member)
                assert handle is not None
                with open(target, "xb") as out:
                    shutil.copyfileobj(handle, out, 1024 * 1024)
    except tarfile.TarError as exc:
        raise BackupError(f"The backup's archive is damaged: {exc}.") from None
    try:
        manifest = json.loads((into / MANIFEST).read_text())
    except (OSError, ValueError):
        raise BackupError("The backup has no readable manifest.") from None
    if manifest.get("format") != FORMAT or manifest.get("version") != FORMAT_VERSION:
        raise BackupError(f"Not a {FORMAT} version {FORMAT_VERSION} backup.")
    return manifest


def pack_directory(directory: Path, out: BinaryIO, recipient: X25519PublicKey) -> int:
    """Encrypt an unpacked backup folder again (the manifest first); returns its file count."""
    packer = _Packer(out, recipient)
    manifest = directory / MANIFEST
    with open(manifest, "rb") as handle:
        packer.add(MANIFEST, handle, manifest.stat().st_size)
    for path in sorted(p for p in directory.rglob("*") if p.is_file() and p != manifest):
        with open(path, "rb") as handle:
            packer.add(path.relative_to(directory).as_posix(), handle, path.stat().st_size)
    packer.close()
    return packer.files
