"""The attachment blob store, over Django's storage API (``STORAGES["attachments"]``).

It only ever holds ciphertext, under random names that say nothing about the file. Writing is
streamed: on the local filesystem backend a blob is written straight into its final folder
under a ``.part`` name and renamed once complete, so memory stays constant and a failed or
refused upload leaves nothing behind. Any other Django storage (S3 through django-storages,
...) gets the ciphertext spooled to a temporary file (in memory up to ``SPOOL_MEMORY_BYTES``,
then on local disk — ciphertext only, never plaintext) and handed to ``storage.save()`` once
complete, because the generic storage API has no incremental write.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import secrets
import tempfile
from collections.abc import Iterator
from typing import BinaryIO

from django.core.files import File
from django.core.files.storage import FileSystemStorage, Storage, storages
from django.utils import timezone

logger = logging.getLogger(__name__)

PART_SUFFIX = ".part"
SPOOL_MEMORY_BYTES = 1024 * 1024
NAME_BYTES = 32


def blob_store() -> Storage:
    return storages["attachments"]


def export_store() -> Storage:
    """Auditors' encrypted export files (``services.exports``), apart from the attachments so
    the attachments' orphan sweep never sees them."""
    return storages["exports"]


def new_blob_name() -> str:
    """A fresh random name, sharded by its first two characters to keep folders small."""
    token = secrets.token_urlsafe(NAME_BYTES)
    return f"{token[:2]}/{token}"


class BlobWriter:
    """Write one blob piece by piece; ``commit()`` publishes it, ``abort()`` removes every
    trace. Used as a context manager, leaving the block with an exception aborts."""

    def __init__(self, name: str, *, storage: Storage | None = None) -> None:
        self.name = name
        self.storage = storage or blob_store()
        self.size = 0
        self._done = False
        self._path: str | None = None
        self._handle: BinaryIO
        if isinstance(self.storage, FileSystemStorage):
            self._path = self.storage.path(name)
            os.makedirs(os.path.dirname(self._path), mode=0o700, exist_ok=True)
            # O_EXCL: a name collision fails loudly instead of overwriting another blob.
            fd = os.open(
                self._path + PART_SUFFIX, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_TRUNC, 0o600
            )
            self._handle = os.fdopen(fd, "wb")
        else:
            self._handle = tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY_BYTES)  # noqa: SIM115

    def write(self, data: bytes) -> None:
        if self._done:
            raise ValueError(f"blob {self.name} is already closed")
        if data:
            self._handle.write(data)
            self.size += len(data)

    def commit(self) -> None:
        """Make the blob durable under its name."""
        if self._done:
            raise ValueError(f"blob {self.name} is already closed")
        try:
            if self._path is not None:
                self._handle.flush()
                os.fsync(self._handle.fileno())
                self._handle.close()
                if os.path.exists(self._path):
                    raise FileExistsError(f"blob {self.name} already exists")
                os.replace(self._path + PART_SUFFIX, self._path)
            else:
                self._handle.seek(0)
                saved = self.storage.save(self.name, File(self._handle, name=self.name))
                self._handle.close()
                if saved != self.name:  # the backend renamed it: never keep an unknown name
                    self.storage.delete(saved)
                    raise FileExistsError(f"blob {self.name} already exists")
        except BaseException:
            self.abort()
            raise
        self._done = True

    def abort(self) -> None:
        """Close and delete whatever was written. Safe to call more than once."""
        if self._done:
            return
        self._done = True
        try:
            self._handle.close()
        finally:
            if self._path is not None:
                _unlink(self._path + PART_SUFFIX)

    def __enter__(self) -> BlobWriter:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is not None or not self._done:
            self.abort()


def _unlink(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def write_blob(name: str, data: bytes) -> None:
    """Store a small blob in one go (thumbnails)."""
    with BlobWriter(name) as writer:
        writer.write(data)
        writer.commit()


def open_blob(name: str) -> BinaryIO:
    """A binary read handle on a stored blob (``FileNotFoundError`` if it is gone)."""
    store = blob_store()
    if isinstance(store, FileSystemStorage):
        return open(store.path(name), "rb")
    if not store.exists(name):
        raise FileNotFoundError(name)
    return store.open(name, "rb")


def delete_blob(name: str, *, store: Storage | None = None) -> None:
    """Remove a blob (and what a stopped writer left of it); a missing one is not an error
    (deletion is idempotent)."""
    if not name:
        return
    store = store or blob_store()
    with contextlib.suppress(FileNotFoundError):
        store.delete(name)
    if isinstance(store, FileSystemStorage):
        _unlink(store.path(name) + PART_SUFFIX)


def blob_exists(name: str) -> bool:
    return bool(name) and blob_store().exists(name)


def _walk(store: Storage, folder: str = "") -> Iterator[str]:
    try:
        directories, files = store.listdir(folder)
    except FileNotFoundError:
        return
    for file_name in files:
        yield f"{folder}/{file_name}" if folder else file_name
    for directory in directories:
        yield from _walk(store, f"{folder}/{directory}" if folder else directory)


def sweep_orphans(
    *, referenced: set[str], older_than: dt.datetime, store: Storage | None = None
) -> list[str]:
    """Delete blobs (and abandoned ``.part`` files) that no attachment row names and that are
    older than ``older_than``: left by a process that died between writing a blob and
    recording it. Young files are spared, since an upload may be in flight."""
    store = store or blob_store()
    removed = []
    for name in _walk(store):
        if name in referenced:
            continue
        try:
            modified = store.get_modified_time(name)
        except (FileNotFoundError, NotImplementedError):
            continue
        if timezone.is_naive(modified):
            modified = timezone.make_aware(modified, dt.UTC)
        if modified >= older_than:
            continue
        delete_blob(name, store=store)
        removed.append(name)
    if removed:
        logger.info("removed %d orphaned blobs", len(removed))
    return removed
