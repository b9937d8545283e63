"""A request-body spool whose disk file holds only ciphertext under a key that never leaves memory.

The server has to hold a request body somewhere until the application reads it (daphne starts
the application only once the whole body has arrived). Memory does not scale to many large
uploads, and a plain temporary file puts plaintext on disk, where it outlives the request in
free blocks, snapshots and backups. ``SealedSpool`` keeps small bodies in memory and, beyond
``memory_bytes``, writes AES-256-CTR ciphertext to an anonymous temporary file under a random
key held only by this object: once the request ends (or the process dies) the bytes on disk are
noise. CTR gives random access at any offset, which the server's readers need; the spool needs
no integrity protection, since only this process can reach its unnamed file.
"""

from __future__ import annotations

import io
import os
import tempfile
from typing import Any, BinaryIO

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

BLOCK = 16
# Twisted's own threshold: bodies declared smaller than this have always stayed in memory.
MEMORY_BYTES = 100_000


class SealedSpool(io.RawIOBase):
    """A seekable, readable, writable file of plaintext whose overflow is sealed on disk."""

    def __init__(self, *, memory_bytes: int = MEMORY_BYTES) -> None:
        super().__init__()
        self.memory_bytes = memory_bytes
        self._key = os.urandom(32)
        self._nonce = os.urandom(8)
        self._memory: bytearray | None = bytearray()
        self._file: BinaryIO | None = None
        self._position = 0
        self._size = 0
        # Writers and readers go through the file in order: each keeps its keystream running
        # (offset, context) instead of starting a new one per call.
        self._streams: dict[str, tuple[int, Any]] = {}

    # -- the keystream -----------------------------------------------------------------------

    def _crypt(self, offset: int, data: bytes, *, stream: str) -> bytes:
        """XOR ``data`` with the keystream at ``offset`` (the same operation seals and opens)."""
        if not data:
            return b""
        at, context = self._streams.get(stream, (-1, None))
        if at != offset:
            counter = self._nonce + (offset // BLOCK).to_bytes(8, "big")
            context = Cipher(algorithms.AES(self._key), modes.CTR(counter)).encryptor()
            skip = offset % BLOCK
            if skip:
                context.update(bytes(skip))
        result = context.update(data)
        self._streams[stream] = (offset + len(data), context)
        return result

    def _spill(self) -> None:
        """Move what is in memory to the sealed file; from now on everything goes there."""
        assert self._memory is not None
        self._file = tempfile.TemporaryFile()  # noqa: SIM115 - closed by close()
        self._file.write(self._crypt(0, bytes(self._memory), stream="write"))
        self._memory = None

    @property
    def on_disk(self) -> bool:
        """Whether the body outgrew memory (its ciphertext is in a temporary file)."""
        return self._file is not None

    # -- the file interface --------------------------------------------------------------------

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        self._check_open()
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        self._check_open()
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._size}[whence]
        if base + offset < 0:
            raise ValueError("negative seek position")
        self._position = base + offset
        return self._position

    def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        self._check_open()
        data = bytes(data)
        end = self._position + len(data)
        if self._file is None and end > self.memory_bytes:
            self._spill()
        if self._file is None:
            assert self._memory is not None
            if self._position > len(self._memory):
                self._memory.extend(bytes(self._position - len(self._memory)))
            self._memory[self._position : end] = data
        else:
            self._file.seek(self._position)
            self._file.write(self._crypt(self._position, data, stream="write"))
        self._position = end
        self._size = max(self._size, end)
        return len(data)

    def read(self, size: int | None = -1) -> bytes:
        self._check_open()
        available = max(0, self._size - self._position)
        count = available if size is None or size < 0 else min(size, available)
        if count == 0:
            return b""
        start = self._position
        if self._file is None:
            assert self._memory is not None
            data = bytes(self._memory[start : start + count])
        else:
            self._file.seek(start)
            data = self._crypt(start, self._file.read(count), stream="read")
        self._position = start + len(data)
        return data

    def readall(self) -> bytes:
        return self.read(-1)

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if self.closed:
            return
        if self._file is not None:
            self._file.close()
        self._file = None
        self._memory = None
        self._streams = {}
        self._key = b""
        super().close()

    def _check_open(self) -> None:
        if self.closed:
            raise ValueError("I/O operation on closed spool")
