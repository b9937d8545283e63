"""The attachment blob store (liaison/storage.py) and the push-style stream encryptor it is fed
by: ciphertext only, random names, nothing left behind by a failed write."""

from __future__ import annotations

import datetime as dt
import io
import os
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from liaison import storage
from liaison.crypto import TamperedError
from liaison.crypto.streaming import (
    DEFAULT_CHUNK_SIZE,
    StreamEncryptor,
    decrypt_stream,
    encrypt_stream,
)


@pytest.fixture
def memory_store(settings: Any) -> None:
    """A storage backend other than the filesystem, as S3 through django-storages would be."""
    settings.STORAGES = {
        **settings.STORAGES,
        "attachments": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
    }


def files_in(folder: Path) -> list[Path]:
    return [path for path in folder.rglob("*") if path.is_file()] if folder.exists() else []


def test_blob_names_are_random_and_say_nothing() -> None:
    names = {storage.new_blob_name() for _ in range(1000)}

    assert len(names) == 1000
    for name in names:
        shard, token = name.split("/")
        assert shard == token[:2]
        assert len(token) >= 43  # 32 random bytes, URL-safe base64


def test_a_committed_blob_is_stored_under_its_name_and_private(store: Path) -> None:
    name = storage.new_blob_name()
    with storage.BlobWriter(name) as writer:
        writer.write(b"sealed ")
        writer.write(b"bytes")
        writer.commit()

    assert files_in(store) == [store / name]
    assert (store / name).stat().st_mode & 0o077 == 0
    with storage.open_blob(name) as handle:
        assert handle.read() == b"sealed bytes"
    assert storage.blob_exists(name)


def test_a_blob_is_invisible_until_committed(store: Path) -> None:
    name = storage.new_blob_name()
    writer = storage.BlobWriter(name)
    writer.write(b"half")

    assert not storage.blob_exists(name)
    assert [path.name for path in files_in(store)] == [name.split("/")[1] + ".part"]
    writer.abort()
    assert files_in(store) == []


def test_an_exception_while_writing_leaves_nothing_behind(store: Path) -> None:
    name = storage.new_blob_name()

    def interrupted_write() -> None:
        with storage.BlobWriter(name) as writer:
            writer.write(b"x" * 100_000)
            raise RuntimeError("the client went away")

    with pytest.raises(RuntimeError):
        interrupted_write()

    assert files_in(store) == []


def test_a_writer_left_without_commit_is_aborted(store: Path) -> None:
    with storage.BlobWriter(storage.new_blob_name()) as writer:
        writer.write(b"never committed")

    assert files_in(store) == []


def test_an_existing_blob_is_never_overwritten(store: Path) -> None:
    name = storage.new_blob_name()
    storage.write_blob(name, b"first")

    with pytest.raises(FileExistsError):
        storage.write_blob(name, b"second")

    with storage.open_blob(name) as handle:
        assert handle.read() == b"first"
    assert files_in(store) == [store / name]


def test_deleting_is_idempotent(store: Path) -> None:
    name = storage.new_blob_name()
    storage.write_blob(name, b"sealed")

    storage.delete_blob(name)
    storage.delete_blob(name)
    storage.delete_blob("")

    assert files_in(store) == []
    with pytest.raises(FileNotFoundError):
        storage.open_blob(name)


def test_any_django_storage_backend_works_through_the_spooled_fallback(memory_store: None) -> None:
    name = storage.new_blob_name()
    payload = os.urandom(3 * storage.SPOOL_MEMORY_BYTES)  # rolls over to a temporary file
    with storage.BlobWriter(name) as writer:
        for start in range(0, len(payload), 65536):
            writer.write(payload[start : start + 65536])
        writer.commit()

    with storage.open_blob(name) as handle:
        assert handle.read() == payload
    aborted = storage.BlobWriter(storage.new_blob_name())
    aborted.write(b"gone")
    aborted.abort()
    assert not storage.blob_exists(aborted.name)
    storage.delete_blob(name)
    assert not storage.blob_exists(name)


def test_the_sweep_removes_old_orphans_only(store: Path) -> None:
    kept, orphan, young = (storage.new_blob_name() for _ in range(3))
    for name in (kept, orphan, young):
        storage.write_blob(name, b"sealed")
    two_days_ago = (timezone.now() - dt.timedelta(days=2)).timestamp()
    for name in (kept, orphan):
        os.utime(store / name, (two_days_ago, two_days_ago))

    removed = storage.sweep_orphans(
        referenced={kept}, older_than=timezone.now() - dt.timedelta(days=1)
    )

    assert removed == [orphan]
    assert {path.relative_to(store).as_posix() for path in files_in(store)} >= {kept, young}
    assert not (store / orphan).exists()


# --- the push-style encryptor -------------------------------------------------------------------


SIZES = [
    0,
    1,
    15,
    DEFAULT_CHUNK_SIZE - 1,
    DEFAULT_CHUNK_SIZE,
    DEFAULT_CHUNK_SIZE + 1,
    5 * 65536 + 7,
]


@pytest.mark.parametrize(
    ("size", "piece"),
    [
        (size, piece)
        for size in SIZES
        for piece in (1, 1000, DEFAULT_CHUNK_SIZE, 100_000)
        if piece > 1 or size <= DEFAULT_CHUNK_SIZE + 1  # byte by byte only where it is quick
    ],
)
def test_the_stream_encryptor_writes_what_decrypt_stream_reads(size: int, piece: int) -> None:
    key, data = os.urandom(32), os.urandom(size)
    encryptor = StreamEncryptor(key, context=b"blob=a")
    sealed = bytearray()
    for start in range(0, size, piece):
        sealed += encryptor.update(data[start : start + piece])
    sealed += encryptor.finalize()

    reference = bytearray()
    encrypt_stream(key, [data], reference.extend, context=b"blob=a")
    assert len(sealed) == len(reference)
    assert b"".join(decrypt_stream(key, io.BytesIO(bytes(sealed)), context=b"blob=a")) == data


def test_a_stream_bound_to_one_blob_does_not_open_as_another() -> None:
    key = os.urandom(32)
    encryptor = StreamEncryptor(key, context=b"blob=a")
    sealed = encryptor.update(b"evidence" * 10_000) + encryptor.finalize()

    with pytest.raises(TamperedError):
        b"".join(decrypt_stream(key, io.BytesIO(sealed), context=b"blob=b"))
    with pytest.raises(TamperedError):
        b"".join(decrypt_stream(key, io.BytesIO(sealed[:-1]), context=b"blob=a"))


def test_a_finalized_stream_takes_no_more_data() -> None:
    encryptor = StreamEncryptor(os.urandom(32), context=b"blob=a")
    encryptor.finalize()

    with pytest.raises(ValueError):
        encryptor.update(b"late")
    with pytest.raises(ValueError):
        encryptor.finalize()
