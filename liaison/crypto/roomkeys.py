"""Per-room data keys (DEKs): random 256-bit keys, one per room and version, stored wrapped.

Unwrapped keys are cached in process memory for a short while (never written anywhere), so a
shredded key disappears from every worker within ``CACHE_SECONDS``. A key enters the cache only
once the transaction that read or created it has committed: a key created in a transaction that
rolls back must never be used, or content would be sealed under a key nobody stored.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

from django.db import IntegrityError, transaction
from django.utils import timezone

from liaison.crypto.errors import ContentShredded, CryptoError, TamperedError
from liaison.crypto.keyring import KEY_BYTES, get_keyring
from liaison.models import AuditExport, Room, RoomKey

CACHE_SECONDS = 60
_cache: dict[tuple[int, int], tuple[float, bytes]] = {}


def clear_cache() -> None:
    _cache.clear()


def _remember_on_commit(room_id: int, version: int, dek: bytes) -> None:
    def remember() -> None:
        _cache[(room_id, version)] = (time.monotonic(), dek)

    transaction.on_commit(remember)


def wrap_context(room_id: int, version: int) -> bytes:
    return f"liaison/room-key/v1|room={room_id}|version={version}".encode()


def _create(room_id: int, version: int) -> tuple[RoomKey, bytes]:
    dek = os.urandom(KEY_BYTES)
    kek_id, wrapped = get_keyring().wrap(dek, wrap_context(room_id, version))
    key = RoomKey.objects.create(
        room_id=room_id, version=version, kek_id=kek_id, wrapped_key=wrapped
    )
    _remember_on_commit(room_id, version, dek)
    return key, dek


def _unwrap(row: RoomKey) -> bytes:
    if row.wrapped_key is None:
        raise ContentShredded(ContentShredded.user_text)
    dek = get_keyring().unwrap(
        row.kek_id, bytes(row.wrapped_key), wrap_context(row.room_id, row.version)
    )
    _remember_on_commit(row.room_id, row.version, dek)
    return dek


def active_key(room: Room | int) -> tuple[int, bytes]:
    """The room's newest data key (created on first use) as ``(version, key)``."""
    room_id = room if isinstance(room, int) else room.pk
    latest = RoomKey.objects.filter(room_id=room_id).order_by("-version").first()
    if latest is None:
        try:
            with transaction.atomic():
                created, dek = _create(room_id, 1)
            return created.version, dek
        except IntegrityError:  # another writer created it first
            latest = RoomKey.objects.get(room_id=room_id, version=1)
    if latest.wrapped_key is None:
        raise ContentShredded("This room's keys were destroyed; it cannot take new content.")
    cached = _cache.get((room_id, latest.version))
    if cached is not None and time.monotonic() - cached[0] < CACHE_SECONDS:
        return latest.version, cached[1]
    return latest.version, _unwrap(latest)


def data_key(room_id: int, version: int) -> bytes:
    """The data key of one version, for decryption; ``ContentShredded`` once destroyed."""
    cached = _cache.get((room_id, version))
    if cached is not None and time.monotonic() - cached[0] < CACHE_SECONDS:
        return cached[1]
    row = RoomKey.objects.filter(room_id=room_id, version=version).first()
    if row is None:
        # Key rows are never deleted (shredding only empties them): a missing version means
        # the record's key version was altered or the record belongs to another room.
        raise TamperedError(f"Room {room_id} has no data key version {version}.")
    if row.wrapped_key is None:
        _cache.pop((room_id, version), None)
        raise ContentShredded(ContentShredded.user_text)
    return _unwrap(row)


def rotate_room_key(room: Room) -> RoomKey:
    """Start a new key version: new content uses it, older content keeps its own version."""
    with transaction.atomic():
        Room.objects.select_for_update().filter(pk=room.pk).first()
        latest = RoomKey.objects.filter(room_id=room.pk).order_by("-version").first()
        if latest is not None and latest.wrapped_key is None:
            raise ContentShredded("This room's keys were destroyed; it cannot take new keys.")
        key, _ = _create(room.pk, (latest.version + 1) if latest else 1)
        return key


@dataclass
class RewrapResult:
    """What ``rewrap_all_keys`` did: counts only, never key material."""

    active_kek: str
    rewrapped: int = 0
    already_current: int = 0
    shredded: int = 0
    previous_keks: dict[str, int] = field(default_factory=dict)

    @property
    def live(self) -> int:
        return self.rewrapped + self.already_current


def _wrapped_keys() -> Iterator[tuple[RoomKey | AuditExport, bytes | None, bytes, str]]:
    """Every stored data key a KEK wraps, its row locked: the rooms' keys (``None`` once
    shredded) and the file keys of auditor exports still on disk. With the wrapped bytes, the
    context they were wrapped against and how an error names the key."""
    from liaison.crypto.records import export_key_context  # records imports this module

    for row in RoomKey.objects.select_for_update().order_by("room_id", "version"):
        wrapped = None if row.wrapped_key is None else bytes(row.wrapped_key)
        name = f"Room {row.room_id} key version {row.version}"
        yield row, wrapped, wrap_context(row.room_id, row.version), name
    exports = AuditExport.objects.select_for_update().filter(wrapped_key__isnull=False)
    for export in exports.order_by("pk"):
        context = export_key_context(export_id=export.pk, storage_name=export.storage_name)
        yield export, bytes(export.wrapped_key), context, f"Export {export.pk}'s file key"


def rewrap_all_keys() -> RewrapResult:
    """Re-wrap every live data key under the active KEK, all or nothing.

    Every key is unwrapped (so a damaged or unreadable key stops the rotation before anything
    changes) and the data keys themselves stay the same, so no content is re-encrypted. An
    export's file key counts too: an export left wrapped by a retired KEK could not be
    downloaded.
    """
    keyring = get_keyring()
    result = RewrapResult(active_kek=keyring.active_id)
    previous: Counter[str] = Counter()
    with transaction.atomic():
        for row, wrapped, context, name in _wrapped_keys():
            if wrapped is None:
                result.shredded += 1
                continue
            try:
                dek = keyring.unwrap(row.kek_id, wrapped, context)
            except CryptoError as exc:
                raise type(exc)(f"{name}: {exc} Nothing was re-wrapped.") from None
            if row.kek_id == keyring.active_id:
                result.already_current += 1
                continue
            previous[row.kek_id] += 1
            row.kek_id, row.wrapped_key = keyring.wrap(dek, context)
            row.save(update_fields=["kek_id", "wrapped_key"])
            result.rewrapped += 1
    result.previous_keks = dict(sorted(previous.items()))
    return result


def kek_usage() -> dict[str, int]:
    """How many live data keys each KEK wraps (rooms' and exports')."""
    usage: Counter[str] = Counter()
    for model in (RoomKey, AuditExport):
        kek_ids = model.objects.filter(wrapped_key__isnull=False).values_list("kek_id", flat=True)
        usage.update(kek_ids)
    return dict(sorted(usage.items()))


def destroy_room_keys(room_ids: list[int]) -> int:
    """Crypto-shred: drop the wrapped keys. Whatever they encrypted is unrecoverable.

    A room that never had a key gets a destroyed placeholder, so it cannot start a fresh key
    and take new content after its exercise was shredded.
    """
    now = timezone.now()
    count = RoomKey.objects.filter(room_id__in=room_ids, wrapped_key__isnull=False).update(
        wrapped_key=None, destroyed_at=now
    )
    keyed = set(RoomKey.objects.filter(room_id__in=room_ids).values_list("room_id", flat=True))
    RoomKey.objects.bulk_create(
        [
            RoomKey(room_id=room_id, version=1, kek_id="", wrapped_key=None, destroyed_at=now)
            for room_id in room_ids
            if room_id not in keyed
        ]
    )
    forget = set(room_ids)

    def drop_cached() -> None:
        for key in [k for k in _cache if k[0] in forget]:
            _cache.pop(key, None)

    drop_cached()
    transaction.on_commit(drop_cached)
    return count
