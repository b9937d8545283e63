"""Restore-check: a backup opened into scratch space and proven to decrypt, match and verify."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from django.conf import settings
from django.core.files.storage import Storage, storages
from django.db import connection

from liaison.crypto.errors import CryptoError, TamperedError
from liaison.crypto.streaming import decrypt_stream
from liaison.services.backups.database import scratch_database
from liaison.services.backups.envelope import (
    ATTACHMENT_STORE,
    ATTACHMENTS,
    CHECKPOINTS,
    BackupError,
    extract,
)


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
