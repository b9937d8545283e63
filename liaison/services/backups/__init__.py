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

from liaison.services.backups.database import _pg_admin, scratch_database
from liaison.services.backups.envelope import (
    ATTACHMENT_STORE,
    ATTACHMENTS,
    CHECKPOINT_STORE,
    CHECKPOINTS,
    FORMAT,
    FORMAT_VERSION,
    HEADER_BYTES,
    HKDF_INFO,
    IDENTITY_PREFIX,
    KEY_BYTES,
    MAGIC,
    MANIFEST,
    PG_DUMP_NAME,
    SQLITE_NAME,
    BackupError,
    configured_recipient,
    extract,
    load_identity,
    new_identity,
    pack_directory,
    parse_identity,
    parse_recipient,
    public_key_text,
)
from liaison.services.backups.restore import (
    RestoreReport,
    _verify_in_child,
    restore_check,
    verify_restored,
)
from liaison.services.backups.writing import BackupSummary, backup_to_file, write_backup

__all__ = [
    "ATTACHMENTS",
    "ATTACHMENT_STORE",
    "CHECKPOINTS",
    "CHECKPOINT_STORE",
    "FORMAT",
    "FORMAT_VERSION",
    "HEADER_BYTES",
    "HKDF_INFO",
    "IDENTITY_PREFIX",
    "KEY_BYTES",
    "MAGIC",
    "MANIFEST",
    "PG_DUMP_NAME",
    "SQLITE_NAME",
    "BackupError",
    "BackupSummary",
    "RestoreReport",
    "_pg_admin",
    "_verify_in_child",
    "backup_to_file",
    "configured_recipient",
    "extract",
    "load_identity",
    "new_identity",
    "pack_directory",
    "parse_identity",
    "parse_recipient",
    "public_key_text",
    "restore_check",
    "scratch_database",
    "verify_restored",
    "write_backup",
]
