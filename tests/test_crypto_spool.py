"""The sealed request-body spool (``liaison/crypto/spool.py``): a file of plaintext to its reader
whose bytes on disk are ciphertext under a key held only in memory."""

from __future__ import annotations

import io
import os
import random

import pytest

from liaison.crypto.spool import SealedSpool


def disk_bytes(spool: SealedSpool) -> bytes:
    assert spool._file is not None
    spool._file.seek(0)
    return spool._file.read()


def test_a_small_body_stays_in_memory() -> None:
    spool = SealedSpool(memory_bytes=1000)
    spool.write(b"x" * 1000)

    assert not spool.on_disk
    spool.seek(0)
    assert spool.read() == b"x" * 1000


def test_what_overflows_to_disk_is_ciphertext_and_reads_back_as_plaintext() -> None:
    marker = b"MSKU1234565 seized bale 07; "
    body = marker * 20_000  # 560,000 bytes
    spool = SealedSpool(memory_bytes=100_000)
    for start in range(0, len(body), 8192):
        spool.write(body[start : start + 8192])

    assert spool.on_disk
    on_disk = disk_bytes(spool)
    assert len(on_disk) == len(body)
    assert marker not in on_disk
    assert b"MSKU" not in on_disk
    assert spool.tell() == len(body)
    spool.seek(0)
    assert spool.read() == body


def test_reads_at_any_offset_and_length_match_the_plaintext() -> None:
    body = os.urandom(300_001)
    spool = SealedSpool(memory_bytes=4096)
    spool.write(body[:1])
    spool.write(body[1:77_777])
    spool.write(body[77_777:])
    chooser = random.Random(7)

    for _ in range(200):
        offset = chooser.randrange(0, len(body))
        size = chooser.randrange(0, 20_000)
        spool.seek(offset)
        assert spool.read(size) == body[offset : offset + size]
    spool.seek(-5, io.SEEK_END)
    assert spool.read() == body[-5:]
    assert spool.read(10) == b""


def test_two_spools_of_the_same_body_share_no_ciphertext() -> None:
    body = b"\x00" * 200_000
    first, second = SealedSpool(memory_bytes=0), SealedSpool(memory_bytes=0)
    first.write(body)
    second.write(body)

    assert disk_bytes(first) != disk_bytes(second)
    assert disk_bytes(first) != body


def test_a_closed_spool_forgets_its_key_and_refuses_reads() -> None:
    spool = SealedSpool(memory_bytes=10)
    spool.write(b"y" * 100)
    spool.close()

    assert spool.closed
    assert spool._key == b""
    with pytest.raises(ValueError):
        spool.seek(0)
    with pytest.raises(ValueError):
        spool.read(1)
    spool.close()  # twice is fine


def test_interleaved_writes_and_reads_stay_consistent() -> None:
    """As daphne uses it: appends while a reader walks the body in 8 KiB pieces."""
    body = os.urandom(250_000)
    spool = SealedSpool(memory_bytes=50_000)
    read_back = bytearray()
    for start in range(0, len(body), 10_000):
        spool.seek(0, io.SEEK_END)
        spool.write(body[start : start + 10_000])
        spool.seek(len(read_back))
        read_back += spool.read(8192)
    spool.seek(len(read_back))
    read_back += spool.read()

    assert bytes(read_back) == body
