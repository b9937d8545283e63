"""Key management: KEK rotation, room key rotation and crypto-shredding (DESIGN.md section 4).

Called by ``manage.py keys``. Each action is one transaction with its audit row; the keyring
file edits (add, retire) are written atomically and audited after the file is in place.
Audit details carry ids and counts only, never key material.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from django.db import transaction
from django.utils import timezone

from liaison import audit
from liaison.crypto import keyring, roomkeys
from liaison.crypto.errors import ContentShredded, CryptoError
from liaison.errors import Conflict, Invalid, NotFound
from liaison.models import Exercise, ExerciseStatus, Room, RoomKey, User
from liaison.services import retention

SHREDDABLE = {ExerciseStatus.CLOSED, ExerciseStatus.ARCHIVED}


@dataclass(frozen=True)
class KekAdded:
    kek_id: str
    file: str
    kek_ids: list[str]


@dataclass(frozen=True)
class KekRetired:
    kek_id: str
    file: str
    kek_ids: list[str]


@dataclass(frozen=True)
class ShredResult:
    exercise_code: str
    room_ids: list[int]
    keys_destroyed: int
    shredded_at: str
    # KEKs that wrapped the destroyed keys: older backups stay readable with them until retired.
    wrapped_by: list[str] = field(default_factory=list)


def _keyring_path(path: Path | str | None) -> Path:
    if path:
        return Path(path)
    configured = keyring.keyring_file()
    if configured is None:
        raise Invalid(
            "The keyring comes from the LIAISON_KEYRING variable, not a file: pass --file "
            "to edit a keyring file, then put its content in the variable."
        )
    return configured


def _write_keyring(path: Path, text: str) -> None:
    try:
        keyring.write_private(path, text)
    except OSError as exc:
        raise Invalid(f"Cannot write the keyring file {path}: {exc.strerror or exc}.") from None
    keyring.reset_keyring_cache()


def _change_keyring(
    target: Path,
    edit: Callable[[str], tuple[str, str]],
    *,
    actor: User | None,
    actor_label: str,
    action: str,
) -> tuple[str, list[str]]:
    """Apply ``edit`` (old text -> new text and the KEK id it concerns) to the keyring file,
    write it atomically and audit it. Returns that KEK id and the ids now in the keyring."""
    try:
        text, kek_id = edit(keyring.read_keyring_file(target))
    except CryptoError as exc:
        raise Invalid(str(exc)) from None
    _write_keyring(target, text)
    kek_ids = keyring.LocalKeyring.from_json(text).kek_ids
    with transaction.atomic():
        audit.record(
            actor=actor,
            actor_label=actor_label,
            action=action,
            target=("kek", kek_id),
            file=str(target),
            kek_ids=kek_ids,
        )
    return kek_id, kek_ids


def add_kek(
    *,
    actor: User | None,
    path: Path | str | None = None,
    kek_id: str | None = None,
    actor_label: str = "",
) -> KekAdded:
    """Add a fresh KEK and make it active; the old ones stay so existing keys still unwrap."""
    target = _keyring_path(path)
    new_id, kek_ids = _change_keyring(
        target,
        lambda text: keyring.add_key_json(text, kek_id, source=str(target)),
        actor=actor,
        actor_label=actor_label,
        action="keys.kek_added",
    )
    return KekAdded(kek_id=new_id, file=str(target), kek_ids=kek_ids)


def rotate_kek(*, actor: User | None, actor_label: str = "") -> roomkeys.RewrapResult:
    """Re-wrap every live data key under the active KEK, so older KEKs can then be retired.

    All or nothing: a key that fails to unwrap (unknown KEK, damaged) stops the rotation.
    """
    try:
        with transaction.atomic():
            result = roomkeys.rewrap_all_keys()
            audit.record(
                actor=actor,
                actor_label=actor_label,
                action="keys.kek_rotated",
                target=("kek", result.active_kek),
                active_kek=result.active_kek,
                rewrapped=result.rewrapped,
                already_current=result.already_current,
                shredded=result.shredded,
                previous_keks=result.previous_keks,
            )
    except CryptoError as exc:
        raise Conflict(str(exc)) from None
    return result


def retire_kek(
    *, actor: User | None, kek_id: str, path: Path | str | None = None, actor_label: str = ""
) -> KekRetired:
    """Remove an old KEK from the keyring file. Refused while a live data key still needs it."""
    target = _keyring_path(path)
    in_use = roomkeys.kek_usage().get(kek_id, 0)
    if in_use:
        raise Conflict(
            f"{in_use} data key(s) are still wrapped by {kek_id!r}; run `manage.py keys "
            "rotate-kek` first. Nothing was changed."
        )
    _, kek_ids = _change_keyring(
        target,
        lambda text: (keyring.remove_key_json(text, kek_id, source=str(target)), kek_id),
        actor=actor,
        actor_label=actor_label,
        action="keys.kek_retired",
    )
    return KekRetired(kek_id=kek_id, file=str(target), kek_ids=kek_ids)


def rotate_room(*, actor: User | None, room: Room, actor_label: str = "") -> RoomKey:
    """Start a new data key version for the room: new content uses it, old content keeps its own."""
    with transaction.atomic():
        exercise = Exercise.objects.select_for_update().get(pk=room.exercise_id)
        if exercise.status == ExerciseStatus.SHREDDED:
            raise Conflict(f"Exercise {exercise.code} was shredded; its rooms take no new keys.")
        try:
            key = roomkeys.rotate_room_key(room)
        except ContentShredded:
            raise Conflict(f"Room {room.pk}'s keys were destroyed; it takes no new keys.") from None
        audit.record(
            actor=actor,
            actor_label=actor_label,
            action="keys.room_rotated",
            target=room,
            exercise=exercise,
            version=key.version,
            kek_id=key.kek_id,
        )
    return key


def check_shreddable(exercise: Exercise) -> None:
    """Raise ``Conflict`` unless the exercise is closed or archived."""
    if exercise.status == ExerciseStatus.SHREDDED:
        raise Conflict(f"Exercise {exercise.code} was already shredded.")
    if exercise.status not in SHREDDABLE:
        raise Conflict(
            f"Exercise {exercise.code} is {exercise.status}: only a closed or archived exercise "
            "can be shredded. Close it first."
        )


def shred_exercise(
    *,
    actor: User | None,
    exercise: Exercise,
    actor_label: str = "",
    waive_export: str = "",
) -> ShredResult:
    """Destroy the data keys of every room of a closed exercise: its content becomes unrecoverable.

    Irreversible, so refused under a legal hold, and without a signed export made since the
    exercise closed unless that was waived (``waive_export``: the reason, recorded as the
    waiver in the same transaction). The rows stay (the message and audit chains still verify
    over ciphertext); only the keys go, and once that commits the files are deleted from the
    store (``retention.delete_content``). Other workers forget their cached keys within
    ``roomkeys.CACHE_SECONDS``.
    """
    with transaction.atomic():
        locked = Exercise.objects.select_for_update().filter(pk=exercise.pk).first()
        if locked is None:
            raise NotFound(f"No exercise {exercise.code}.")
        check_shreddable(locked)
        if waive_export and not retention.export_status(locked).satisfied:
            locked = retention.waive_export(
                actor=actor, exercise=locked, reason=waive_export, actor_label=actor_label
            )
        blockers = retention.shred_blockers(locked)
        if blockers:
            raise Conflict(
                f"Exercise {locked.code} cannot be shredded: {'; '.join(blockers)}. "
                "Nothing was shredded."
            )
        room_ids = list(
            Room.objects.filter(exercise=locked).order_by("pk").values_list("pk", flat=True)
        )
        wrapped_by = sorted(
            set(
                RoomKey.objects.filter(room_id__in=room_ids, wrapped_key__isnull=False).values_list(
                    "kek_id", flat=True
                )
            )
        )
        destroyed = roomkeys.destroy_room_keys(room_ids)
        now = timezone.now()
        locked.status = ExerciseStatus.SHREDDED
        locked.shredded_at = now
        locked.save(update_fields=["status", "shredded_at", "updated_at"])
        export = retention.export_status(locked)
        audit.record(
            actor=actor,
            actor_label=actor_label,
            action="keys.shredded",
            target=locked,
            exercise=locked,
            rooms=len(room_ids),
            keys_destroyed=destroyed,
            wrapped_by=wrapped_by,
            export_manifest_sha256=export.manifest_sha256 or None,
            export_waived=export.waived_at is not None,
        )
        transaction.on_commit(
            partial(retention.delete_content, exercise_id=locked.pk, actor_label=actor_label)
        )
    exercise.status, exercise.shredded_at = locked.status, locked.shredded_at
    return ShredResult(
        exercise_code=locked.code,
        room_ids=room_ids,
        keys_destroyed=destroyed,
        shredded_at=now.isoformat(),
        wrapped_by=wrapped_by,
    )
