"""Chunked AEAD for files (the construction of Tink's streaming AEAD), in constant memory.

Layout: a header ``MAGIC | chunk size (4 bytes) | salt (16) | nonce prefix (7)``, then chunks of
``chunk size + 16`` bytes (the last may be shorter). A per-file key is derived from the room's
data key with HKDF over the salt and the caller's context. Chunk ``i`` uses the nonce
``prefix | i (4 bytes) | last flag (1 byte)`` and the header, index and flag as associated data,
so reordering, swapping between files, truncation and extension all fail to authenticate.
"""

from __future__ import annotations

import hashlib
import os
import struct
from collections.abc import Callable, Iterable, Iterator
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from liaison.crypto.errors import TamperedError

MAGIC = b"LSA1"
DEFAULT_CHUNK_SIZE = 64 * 1024
SALT_BYTES = 16
PREFIX_BYTES = 7
TAG_BYTES = 16
HEADER_BYTES = len(MAGIC) + 4 + SALT_BYTES + PREFIX_BYTES
MAX_CHUNKS = 2**32 - 1


def _file_key(key: bytes, salt: bytes, context: bytes) -> AESGCM:
    derived = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=salt, info=b"liaison/stream/v1|" + context
    ).derive(key)
    return AESGCM(derived)


def _nonce(prefix: bytes, index: int, last: bool) -> bytes:
    return prefix + struct.pack(">IB", index, 1 if last else 0)


def _aad(header: bytes, index: int, last: bool) -> bytes:
    return header + struct.pack(">IB", index, 1 if last else 0)


class StreamResult:
    __slots__ = ("sha256", "size")

    def __init__(self, size: int, sha256: str) -> None:
        self.size = size
        self.sha256 = sha256


def encrypt_stream(
    key: bytes,
    source: Iterable[bytes],
    write: Callable[[bytes], object],
    *,
    context: bytes,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    max_bytes: int | None = None,
) -> StreamResult:
    """Encrypt ``source`` piece by piece into ``write``; returns the plaintext size and SHA-256.

    Pull-style driver of ``StreamEncryptor``, so there is one encryptor and one format.
    ``max_bytes`` stops the stream as soon as it is exceeded (``ValueError``), before the rest
    of an oversized source is read and before any of the excess is written.
    """
    encryptor = StreamEncryptor(key, context=context, chunk_size=chunk_size)
    digest, total = hashlib.sha256(), 0
    for piece in source:
        total += len(piece)
        if max_bytes is not None and total > max_bytes:
            raise ValueError("stream exceeds the size limit")
        digest.update(piece)
        sealed = encryptor.update(piece)
        if sealed:
            write(sealed)
    write(encryptor.finalize())
    return StreamResult(total, digest.hexdigest())


def _read_exact(handle: BinaryIO, size: int) -> bytes:
    parts, remaining = [], size
    while remaining:
        piece = handle.read(remaining)
        if not piece:
            break
        parts.append(piece)
        remaining -= len(piece)
    return b"".join(parts)


def decrypt_stream(key: bytes, handle: BinaryIO, *, context: bytes) -> Iterator[bytes]:
    """Yield plaintext chunks; raise ``TamperedError`` the moment anything fails to authenticate.

    A consumer must not treat earlier chunks as complete until the generator ends cleanly:
    truncation is only detectable at the end.
    """
    header = _read_exact(handle, HEADER_BYTES)
    if len(header) != HEADER_BYTES or not header.startswith(MAGIC):
        raise TamperedError("Not an encrypted Liaison stream, or its header is damaged.")
    (chunk_size,) = struct.unpack(">I", header[4:8])
    if not 16 <= chunk_size <= 2**24:
        raise TamperedError("The stream header is damaged.")
    salt = header[8 : 8 + SALT_BYTES]
    prefix = header[8 + SALT_BYTES :]
    aead = _file_key(key, salt, context)
    sealed_size = chunk_size + TAG_BYTES
    index = 0
    current = _read_exact(handle, sealed_size)
    while True:
        following = _read_exact(handle, sealed_size) if len(current) == sealed_size else b""
        last = not following
        try:
            yield aead.decrypt(_nonce(prefix, index, last), current, _aad(header, index, last))
        except InvalidTag:
            raise TamperedError(f"Encrypted file chunk {index} failed to authenticate.") from None
        if last:
            return
        index += 1
        current = following


# --- encryption -------------------------------------------------------------------------------
# Push-style, for producers that are handed data piece by piece (an upload); ``encrypt_stream``
# drives it for a source that can be iterated.


class StreamEncryptor:
    """The stream encryptor: ``update()`` with each piece, then ``finalize()`` once.

    Produces exactly the layout ``decrypt_stream`` reads: every full chunk is sealed as not-last
    the moment it fills; ``finalize`` seals the remainder (possibly empty) as the last chunk.
    Holds at most one chunk of plaintext.
    """

    def __init__(self, key: bytes, *, context: bytes, chunk_size: int = DEFAULT_CHUNK_SIZE) -> None:
        if not 16 <= chunk_size <= 2**24:
            raise ValueError("chunk_size out of range")
        salt, self._prefix = os.urandom(SALT_BYTES), os.urandom(PREFIX_BYTES)
        self._header = MAGIC + struct.pack(">I", chunk_size) + salt + self._prefix
        self._aead = _file_key(key, salt, context)
        self._chunk_size = chunk_size
        self._buffer = bytearray()
        self._index = 0
        self._header_sent = False
        self._finalized = False

    def _seal(self, chunk: bytes, last: bool) -> bytes:
        sealed = self._aead.encrypt(
            _nonce(self._prefix, self._index, last), chunk, _aad(self._header, self._index, last)
        )
        self._index += 1
        if self._index >= MAX_CHUNKS:
            raise ValueError("stream too long")
        return sealed

    def _start(self) -> list[bytes]:
        if self._header_sent:
            return []
        self._header_sent = True
        return [self._header]

    def update(self, data: bytes) -> bytes:
        """Ciphertext for every chunk that ``data`` completes (may be empty)."""
        if self._finalized:
            raise ValueError("the stream is already finalized")
        out = self._start()
        self._buffer += data
        size = self._chunk_size
        if len(self._buffer) >= size:
            view = memoryview(self._buffer)
            offset = 0
            while len(self._buffer) - offset >= size:
                out.append(self._seal(bytes(view[offset : offset + size]), False))
                offset += size
            view.release()
            del self._buffer[:offset]
        return b"".join(out)

    def finalize(self) -> bytes:
        """The sealed last chunk (and the header, if nothing was written before)."""
        if self._finalized:
            raise ValueError("the stream is already finalized")
        out = self._start()
        out.append(self._seal(bytes(self._buffer), True))
        self._buffer = bytearray()
        self._finalized = True
        return b"".join(out)
