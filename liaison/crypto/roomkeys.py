"""Per-room data keys (DEKs): random 256-bit keys, one per room and version, stored wrapped.

Unwrapped keys are cached in process memory for a short while (never written anywhere), so a
shredded key disappears from every worker within ``CACHE_SECONDS``.
"""

from __future__ import annotations

import os
import time

from django.db import IntegrityError, transaction
from django.utils import timezone

from liaison.crypto.errors import ContentShredded
from liaison.crypto.keyring import KEY_BYTES, get_keyring
from liaison.models import Room, RoomKey

CACHE_SECONDS = 60
_cache: dict[tuple[int, int], tuple[float, bytes]] = {}


def clear_cache() -> None:
    _cache.clear()


def wrap_context(room_id: int, version: int) -> bytes:
    return f"liaison/room-key/v1|room={room_id}|version={version}".encode()


def _create(room_id: int, version: int) -> RoomKey:
    dek = os.urandom(KEY_BYTES)
    kek_id, wrapped = get_keyring().wrap(dek, wrap_context(room_id, version))
    key = RoomKey.objects.create(
        room_id=room_id, version=version, kek_id=kek_id, wrapped_key=wrapped
    )
    _cache[(room_id, version)] = (time.monotonic(), dek)
    return key


def active_key(room: Room | int) -> tuple[int, bytes]:
    """The room's newest data key (created on first use) as ``(version, key)``."""
    room_id = room if isinstance(room, int) else room.pk
    latest = RoomKey.objects.filter(room_id=room_id).order_by("-version").first()
    if latest is None:
        try:
            with transaction.atomic():
                latest = _create(room_id, 1)
        except IntegrityError:  # another writer created it first
            latest = RoomKey.objects.get(room_id=room_id, version=1)
    if latest.wrapped_key is None:
        raise ContentShredded("This room's keys were destroyed; it cannot take new content.")
    return latest.version, data_key(room_id, latest.version)


def data_key(room_id: int, version: int) -> bytes:
    cached = _cache.get((room_id, version))
    if cached is not None and time.monotonic() - cached[0] < CACHE_SECONDS:
        return cached[1]
    row = RoomKey.objects.filter(room_id=room_id, version=version).first()
    if row is None or row.wrapped_key is None:
        _cache.pop((room_id, version), None)
        raise ContentShredded(ContentShredded.user_text)
    dek = get_keyring().unwrap(row.kek_id, bytes(row.wrapped_key), wrap_context(room_id, version))
    _cache[(room_id, version)] = (time.monotonic(), dek)
    return dek


def rotate_room_key(room: Room) -> RoomKey:
    """Start a new key version: new content uses it, older content keeps its own version."""
    with transaction.atomic():
        Room.objects.select_for_update().filter(pk=room.pk).first()
        latest = RoomKey.objects.filter(room_id=room.pk).order_by("-version").first()
        if latest is not None and latest.wrapped_key is None:
            raise ContentShredded("This room's keys were destroyed.")
        return _create(room.pk, (latest.version + 1) if latest else 1)


def rewrap_all_keys() -> tuple[int, str]:
    """Re-wrap every live data key under the active KEK. Returns (count, active KEK id)."""
    keyring = get_keyring()
    count = 0
    with transaction.atomic():
        for row in RoomKey.objects.select_for_update().filter(wrapped_key__isnull=False):
            context = wrap_context(row.room_id, row.version)
            dek = keyring.unwrap(row.kek_id, bytes(row.wrapped_key), context)
            if row.kek_id == keyring.active_id:
                continue
            row.kek_id, row.wrapped_key = keyring.wrap(dek, context)
            row.save(update_fields=["kek_id", "wrapped_key"])
            count += 1
    return count, keyring.active_id


def kek_ids_in_use() -> set[str]:
    return set(
        RoomKey.objects.filter(wrapped_key__isnull=False)
        .values_list("kek_id", flat=True)
        .distinct()
    )


def destroy_room_keys(room_ids: list[int]) -> int:
    """Crypto-shred: drop the wrapped keys. Whatever they encrypted is unrecoverable."""
    count = RoomKey.objects.filter(room_id__in=room_ids, wrapped_key__isnull=False).update(
        wrapped_key=None, destroyed_at=timezone.now()
    )
    for key in [k for k in _cache if k[0] in set(room_ids)]:
        _cache.pop(key, None)
    return count
