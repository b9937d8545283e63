"""Writing a backup: the database snapshot, the attachment store and the signed checkpoints."""

from __future__ import annotations

import datetime as dt
import getpass
import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey
from django.core.files.storage import Storage, storages
from django.db import connection

from liaison.services.backups.database import _dump_database
from liaison.services.backups.envelope import (
    ATTACHMENT_STORE,
    ATTACHMENTS,
    CHECKPOINT_STORE,
    CHECKPOINTS,
    FORMAT,
    FORMAT_VERSION,
    MANIFEST,
    _Packer,
    public_key_text,
)
from liaison.storage import PART_SUFFIX


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
