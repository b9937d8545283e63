"""Encrypted backups that are proven to restore.

A backup is one file: a consistent database snapshot (``pg_dump``, or SQLite's online backup),
every blob of the attachment store and every signed audit checkpoint, in a tar stream that is
encrypted as it is written to the operator's X25519 public key. Layout::

    MAGIC (16) | ephemeral X25519 public key (32) | recipient public key (32) | stream

The stream key is HKDF-SHA256 over the X25519 shared secret (salted with both public keys);
the stream itself is ``liaison.crypto.streaming`` (chunked AES-256-GCM, truncation and
reordering detected) with the header as context. Only the operator's private key, kept offline,
opens a backup; the server holds only the public half (``LIAISON_BACKUP_RECIPIENT``).

The keyring and the audit signing key are not in a backup, on purpose: a stolen backup must be
useless without them (docs/operations.md says how to keep them).

``restore_check`` opens a backup into a private scratch folder and a scratch database and, in a
child process pointed at both, proves it: every message and edit decrypts with the keyring,
every attachment blob matches its recorded SHA-256, and the audit chain verifies against its
signed checkpoints.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import datetime as dt
import getpass
import hashlib
import io
import json
import os
import secrets
import shutil
import sqlite3
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core.files.storage import Storage, storages
from django.db import connection

from liaison.crypto.errors import CryptoError, TamperedError
from liaison.crypto.streaming import StreamEncryptor, decrypt_stream
from liaison.storage import PART_SUFFIX

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


# --- writing a backup ---------------------------------------------------------------------------


@dataclass
class BackupSummary:
    path: str
    database: str
    attachments: int
    attachment_bytes: int
    checkpoints: int
    latest_checkpoint: str | None
    plaintext_bytes: int = 0
    encrypted_bytes: int = 0


def _walk(store: Storage, folder: str = "") -> Iterator[str]:
    try:
        folders, files = store.listdir(folder)
    except FileNotFoundError:
        return
    for name in sorted(files):
        yield f"{folder}/{name}" if folder else name
    for name in sorted(folders):
        yield from _walk(store, f"{folder}/{name}" if folder else name)


def _owner_connection() -> Any:
    """The table owner's connection when one is configured (DATABASE_MIGRATE_URL, the "owner"
    alias): it may dump everything and create the scratch database; the servers' own role may
    not. Otherwise the default connection."""
    from django.db import connections

    return connections["owner"] if "owner" in settings.DATABASES else connection


def _pg_environment(settings_dict: dict[str, Any], name: str | None = None) -> dict[str, str]:
    """libpq variables for pg_dump/pg_restore: the password never on a command line."""
    env = dict(os.environ)
    values = {
        "PGHOST": settings_dict.get("HOST") or "",
        "PGPORT": str(settings_dict.get("PORT") or ""),
        "PGUSER": settings_dict.get("USER") or "",
        "PGPASSWORD": settings_dict.get("PASSWORD") or "",
        "PGDATABASE": name or settings_dict.get("NAME") or "",
        "PGSSLMODE": (settings_dict.get("OPTIONS") or {}).get("sslmode", ""),
    }
    env.update({key: value for key, value in values.items() if value})
    return env


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise BackupError(
            f"{name} is not installed: install the PostgreSQL client of the server's major "
            "version (the image has it)."
        )
    return found


def _run(command: list[str], env: dict[str, str], what: str) -> None:
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)  # noqa: S603
    if result.returncode != 0:
        problem = (result.stderr or result.stdout).strip().splitlines()
        raise BackupError(f"{what} failed: {problem[-1] if problem else result.returncode}")


def _dump_database(work: Path) -> tuple[str, Path]:
    """A consistent snapshot of the database into ``work``: (manifest name, file)."""
    owner = _owner_connection()
    owner.ensure_connection()
    if owner.vendor == "postgresql":
        target = work / "liaison.pgdump"
        # One transaction at REPEATABLE READ: every table as of the same instant.
        _run(
            [
                _tool("pg_dump"),
                "--format=custom",
                "--no-owner",
                "--no-privileges",
                f"--file={target}",
            ],
            _pg_environment(owner.settings_dict),
            "pg_dump",
        )
        return PG_DUMP_NAME, target
    if connection.vendor == "sqlite":
        target = work / "liaison.sqlite3"
        source = sqlite3.connect(connection.settings_dict["NAME"])
        copy = sqlite3.connect(target)
        try:
            source.backup(copy)  # SQLite's online backup: a consistent copy while in use
        finally:
            copy.close()
            source.close()
        return SQLITE_NAME, target
    raise BackupError(f"Backups support PostgreSQL and SQLite, not {connection.vendor}.")


def _operator() -> str:
    try:
        return f"manage.py backup ({getpass.getuser()})"
    except (KeyError, OSError):
        return "manage.py backup"


def write_backup(
    *,
    out: BinaryIO,
    recipient: X25519PublicKey,
    path_label: str = "",
    checkpoint: bool = True,
    work_dir: str | None = None,
) -> BackupSummary:
    """Write a backup to ``out``: the event on record, a fresh signed checkpoint, the database,
    then the stores (blobs are written before their rows commit, so every row of the snapshot
    finds its blob; blobs that appeared since are harmless extras)."""
    from django.db import transaction

    from liaison import audit
    from liaison.audit import checkpoints as audit_checkpoints

    with transaction.atomic():
        audit.record(
            actor=None,
            actor_label=_operator(),
            action="backup.created",
            target=("backup", Path(path_label).name[:64] if path_label else "stream"),
            path=path_label,
            recipient=public_key_text(recipient),
        )
    if checkpoint:
        audit_checkpoints.write_checkpoint(if_changed=True)
    attachments_store = storages[ATTACHMENT_STORE]
    checkpoint_store = storages[CHECKPOINT_STORE]
    checkpoint_names = [n for n in _walk(checkpoint_store) if "/" not in n]
    with tempfile.TemporaryDirectory(prefix="liaison-backup-", dir=work_dir) as work:
        os.chmod(work, 0o700)
        dump_name, dump = _dump_database(Path(work))
        manifest = {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "database": {"vendor": connection.vendor, "file": dump_name},
            "attachments": ATTACHMENTS,
            "checkpoints": CHECKPOINTS,
            "recipient": public_key_text(recipient),
        }
        packer = _Packer(out, recipient)
        packer.add_bytes(MANIFEST, json.dumps(manifest, indent=2).encode())
        with open(dump, "rb") as handle:
            packer.add(dump_name, handle, dump.stat().st_size)
        dump.unlink()
        summary = BackupSummary(
            path=path_label,
            database=connection.vendor,
            attachments=0,
            attachment_bytes=0,
            checkpoints=0,
            latest_checkpoint=checkpoint_names[-1] if checkpoint_names else None,
        )
        for name in _walk(attachments_store):
            if name.endswith(PART_SUFFIX):
                continue  # an upload still being written: not yet referenced by any row
            size = attachments_store.size(name)
            with attachments_store.open(name, "rb") as handle:
                packer.add(f"{ATTACHMENTS}/{name}", handle, size)
            summary.attachments += 1
            summary.attachment_bytes += size
        for name in checkpoint_names:
            with checkpoint_store.open(name, "rb") as handle:
                packer.add(f"{CHECKPOINTS}/{name}", handle, checkpoint_store.size(name))
            summary.checkpoints += 1
        summary.plaintext_bytes = packer.close()
    return summary


def backup_to_file(
    *,
    path: Path,
    recipient: X25519PublicKey,
    checkpoint: bool = True,
    work_dir: str | None = None,
) -> BackupSummary:
    """Write a backup to ``path`` (created exclusively, owner-only; removed if anything fails)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            summary = write_backup(
                out=out,
                recipient=recipient,
                path_label=str(path),
                checkpoint=checkpoint,
                work_dir=work_dir,
            )
            out.flush()
            os.fsync(out.fileno())
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    summary.encrypted_bytes = path.stat().st_size
    return summary


# --- restoring into scratch and proving it ------------------------------------------------------


@dataclass
class RestoreReport:
    """What ``restore_check`` found; ``problems`` name every record that failed."""

    ok: bool = False
    backup: str = ""
    created_at: str = ""
    database: str = ""
    scratch_database: str = ""
    unpacked: str = ""
    migrations_applied: int = 0
    messages: int = 0
    revisions: int = 0
    attachments: int = 0
    thumbnails: int = 0
    shredded: int = 0
    purged: int = 0
    audit_events: int = 0
    checkpoints: int = 0
    latest_checkpoint: str | None = None
    audit_summary: str = ""
    problems: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _pg_params(settings_dict: dict[str, Any], dbname: str) -> dict[str, Any]:
    params: dict[str, Any] = {"dbname": dbname}
    for key, name in (
        ("HOST", "host"),
        ("PORT", "port"),
        ("USER", "user"),
        ("PASSWORD", "password"),
    ):
        if settings_dict.get(key):
            params[name] = settings_dict[key]
    if (settings_dict.get("OPTIONS") or {}).get("sslmode"):
        params["sslmode"] = settings_dict["OPTIONS"]["sslmode"]
    return params


def _pg_admin(sql: str) -> None:
    import psycopg

    params = _pg_params(_owner_connection().settings_dict, "postgres")
    with psycopg.connect(**params, autocommit=True) as admin:
        admin.execute(sql)


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _database_url(settings_dict: dict[str, Any], name: str) -> str:
    from urllib.parse import quote

    user = quote(settings_dict.get("USER") or "", safe="")
    password = quote(settings_dict.get("PASSWORD") or "", safe="")
    credentials = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    host = settings_dict.get("HOST") or "localhost"
    port = f":{settings_dict['PORT']}" if settings_dict.get("PORT") else ""
    return f"postgres://{credentials}{host}{port}/{quote(name, safe='')}"


@contextlib.contextmanager
def scratch_database(unpacked: Path, manifest: dict[str, Any], *, keep: bool) -> Iterator[str]:
    """Restore the snapshot into a new database; yields its DATABASE_URL, drops it after."""
    vendor = manifest["database"]["vendor"]
    dump = unpacked / _safe_member(manifest["database"]["file"])
    if vendor == "sqlite":
        target = unpacked / "restored.sqlite3"
        shutil.copyfile(dump, target)
        yield f"sqlite:///{target}"
        return
    if vendor != "postgresql":
        raise BackupError(f"The backup holds a {vendor} database, which cannot be restored here.")
    if connection.vendor != "postgresql":
        raise BackupError("A PostgreSQL backup is restore-checked with DATABASE_URL on PostgreSQL.")
    name = f"liaison_restore_check_{secrets.token_hex(6)}"
    _pg_admin(f"CREATE DATABASE {_quote_ident(name)}")
    try:
        _run(
            [
                _tool("pg_restore"),
                "--no-owner",
                "--no-privileges",
                "--exit-on-error",
                "--single-transaction",
                f"--dbname={name}",
                str(dump),
            ],
            _pg_environment(_owner_connection().settings_dict, name),
            "pg_restore",
        )
        yield _database_url(_owner_connection().settings_dict, name)
    finally:
        if not keep:
            _pg_admin(f"DROP DATABASE IF EXISTS {_quote_ident(name)} WITH (FORCE)")


def restore_check(
    *,
    source: Path,
    identity: X25519PrivateKey,
    audit_public_key: str = "",
    keep: bool = False,
    work_dir: str | None = None,
) -> RestoreReport:
    """Open ``source`` into scratch space and prove it (see the module docstring)."""
    report = RestoreReport(backup=str(source))
    if audit_public_key:
        _audit_key(audit_public_key)  # refused now, not after unpacking
    unpacked = Path(tempfile.mkdtemp(prefix="liaison-restore-", dir=work_dir))
    try:
        try:
            with open(source, "rb") as handle:
                manifest = extract(handle, identity, unpacked)
        except OSError as exc:
            raise BackupError(f"The backup {source} cannot be read: {exc.strerror}.") from None
        report.created_at = manifest.get("created_at", "")
        report.database = manifest["database"]["vendor"]
        with scratch_database(unpacked, manifest, keep=keep) as url:
            child = _verify_in_child(
                url=url,
                attachments=unpacked / ATTACHMENTS,
                checkpoints=unpacked / CHECKPOINTS,
                audit_public_key=audit_public_key,
            )
            if keep:
                report.unpacked = str(unpacked)  # a SQLite copy is restored.sqlite3 in here
                if report.database == "postgresql":
                    report.scratch_database = url.rsplit("/", 1)[-1]
    finally:
        if not keep:
            shutil.rmtree(unpacked, ignore_errors=True)
    for name, value in child.items():
        if name in _FOUND_BY_CHILD:
            setattr(report, name, value)
    report.ok = not report.problems
    return report


_FOUND_BY_CHILD = frozenset(
    {
        "migrations_applied",
        "messages",
        "revisions",
        "attachments",
        "thumbnails",
        "shredded",
        "purged",
        "audit_events",
        "checkpoints",
        "latest_checkpoint",
        "audit_summary",
        "problems",
    }
)


def _verify_in_child(
    *, url: str, attachments: Path, checkpoints: Path, audit_public_key: str
) -> dict[str, Any]:
    """Run the proof in a fresh process whose settings point at the restored copy only."""
    env = dict(os.environ)
    env.update(
        {
            "DATABASE_URL": url,
            "LIAISON_ATTACHMENT_DIR": str(attachments),
            "LIAISON_CHECKPOINT_DIR": str(checkpoints),
            "LIAISON_RESTORE_CHECK_PUBLIC_KEY": audit_public_key,
            "REDIS_URL": "",
            "LIAISON_LOG_FORMAT": "plain",
        }
    )
    # The child must reach the restored copy only: no owner alias onto the live database (its
    # migrate would use it), and no role management.
    for name in ("DATABASE_MIGRATE_URL", "LIAISON_DB_APP_ROLE", "LIAISON_DB_APP_PASSWORD_FILE"):
        env.pop(name, None)
    attachments.mkdir(exist_ok=True)
    checkpoints.mkdir(exist_ok=True)
    command = [
        sys.executable,
        str(Path(settings.BASE_DIR) / "manage.py"),
        "restore_check",
        "--verify-restored",
    ]
    result = subprocess.run(  # noqa: S603
        command, env=env, capture_output=True, text=True, check=False, timeout=6 * 3600
    )
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    if result.returncode not in (0, 1) or not lines:
        problem = (result.stderr or result.stdout).strip().splitlines()
        raise BackupError(
            "The restored copy could not be checked: "
            + (problem[-1] if problem else f"exit {result.returncode}")
        )
    return json.loads(lines[-1])


def verify_restored(*, audit_public_key: str = "") -> RestoreReport:
    """In the child: the configured database and stores are the restored copy. Proves every
    message and edit decrypts, every attachment matches its digest, and the audit chain."""
    from django.core.management import call_command
    from django.db.migrations.executor import MigrationExecutor

    from liaison.audit import verify as audit_verify
    from liaison.crypto import records
    from liaison.crypto.errors import ContentShredded
    from liaison.models import Attachment, AuditEvent, Message, MessageRevision

    report = RestoreReport()
    executor = MigrationExecutor(connection)
    pending = executor.migration_plan(executor.loader.graph.leaf_nodes())
    if pending:
        call_command("migrate", interactive=False, verbosity=0)
        report.migrations_applied = len(pending)

    for message in Message.objects.order_by("room_id", "seq").iterator(chunk_size=1000):
        try:
            records.open_message_body(message)
            report.messages += 1
        except ContentShredded:
            report.shredded += 1
        except (CryptoError, UnicodeDecodeError) as exc:
            report.problems.append(
                f"message {message.room_id}#{message.seq} (id {message.pk}) does not decrypt: {exc}"
            )
    revisions = MessageRevision.objects.select_related("message").order_by("message_id", "number")
    for revision in revisions.iterator(chunk_size=1000):
        message = revision.message
        try:
            records.open_revision(revision, message)
            report.revisions += 1
        except ContentShredded:
            report.shredded += 1
        except (CryptoError, UnicodeDecodeError) as exc:
            report.problems.append(
                f"edit {revision.number} of message {message.room_id}#{message.seq} "
                f"does not decrypt: {exc}"
            )

    store = storages[ATTACHMENT_STORE]
    for attachment in Attachment.objects.order_by("pk").iterator(chunk_size=500):
        if attachment.purged_at is not None:
            report.purged += 1
            continue
        problem = _check_blob(store, attachment)
        if problem == "shredded":
            report.shredded += 1
        elif problem:
            report.problems.append(
                f"attachment {attachment.pk} (blob {attachment.storage_name}): {problem}"
            )
        else:
            report.attachments += 1
        if attachment.thumbnail_storage_name and problem != "shredded":
            thumbnail = _check_blob(store, attachment, thumbnail=True)
            if thumbnail and thumbnail != "shredded":
                report.problems.append(
                    f"thumbnail of attachment {attachment.pk} "
                    f"(blob {attachment.thumbnail_storage_name}): {thumbnail}"
                )
            elif not thumbnail:
                report.thumbnails += 1

    public_key = _audit_key(audit_public_key) if audit_public_key else None
    chains = audit_verify.verify(public_key=public_key)
    report.audit_events = AuditEvent.objects.count()
    report.checkpoints = chains.checkpoints_checked
    report.latest_checkpoint = chains.latest_checkpoint
    report.audit_summary = chains.summary()
    if not chains.ok:
        report.problems.extend(
            f"audit {b.chain} chain {b.room + ' ' if b.room else ''}seq {b.seq}: "
            f"{b.reason}: {b.detail}"
            for b in chains.breaks
        )
    if chains.checkpoints_checked == 0:
        report.problems.append(
            "the backup holds no valid signed audit checkpoint: a cut or recomputed chain "
            "could not be detected"
        )
    report.ok = not report.problems
    return report


def _audit_key(value: str) -> Any:
    from liaison.audit.offline_verifier import KeyProblem, load_public_key

    try:
        return load_public_key(value)
    except KeyProblem as exc:
        raise BackupError(f"The audit public key is unusable: {exc}.") from None


def _check_blob(store: Storage, attachment: Any, *, thumbnail: bool = False) -> str:
    """ "" when the blob authenticates (and, for the file, matches size and SHA-256); else
    what is wrong, or "shredded" when its room key was destroyed on purpose."""
    from liaison.crypto import records, roomkeys
    from liaison.crypto.errors import ContentShredded

    name = attachment.thumbnail_storage_name if thumbnail else attachment.storage_name
    kind = records.ATTACHMENT_THUMBNAIL if thumbnail else records.ATTACHMENT_BLOB
    try:
        key = roomkeys.data_key(attachment.room_id, attachment.key_version)
    except ContentShredded:
        return "shredded"
    except CryptoError as exc:
        return f"its room key does not open: {exc}"
    context = records.stream_context(
        kind, room_id=attachment.room_id, key_version=attachment.key_version, storage_name=name
    )
    if not store.exists(name):
        return "missing from the backup"
    digest, size = hashlib.sha256(), 0
    try:
        with store.open(name, "rb") as handle:
            for piece in decrypt_stream(key, handle, context=context):
                digest.update(piece)
                size += len(piece)
    except TamperedError as exc:
        return f"damaged: {exc}"
    if thumbnail:
        return ""
    if size != attachment.size or digest.hexdigest() != attachment.sha256:
        return (
            f"does not match its recorded digest (holds {size} bytes with SHA-256 "
            f"{digest.hexdigest()[:16]}…, recorded {attachment.size} bytes, "
            f"{attachment.sha256[:16]}…)"
        )
    return ""
