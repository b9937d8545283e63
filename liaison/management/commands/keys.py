"""Manage the encryption keys: keyring, KEK rotation, room key rotation, crypto-shredding.

Rotating the key-encryption key, step by step::

    manage.py keys add-kek            # a new active KEK in the keyring file; old ones stay
    manage.py keys rotate-kek         # re-wrap every data key under it
    manage.py keys retire-kek OLD_ID  # drop the old KEK (refused while anything still needs it)
"""

from __future__ import annotations

import getpass
import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from liaison.crypto import keyring, roomkeys
from liaison.crypto.errors import CryptoError
from liaison.errors import LiaisonError
from liaison.models import Exercise, Room
from liaison.services import keys as key_service
from liaison.services import retention


def _operator() -> str:
    try:
        return f"manage.py keys ({getpass.getuser()})"
    except (KeyError, OSError):
        return "manage.py keys"


class Command(BaseCommand):
    help = "Manage encryption keys: generate, add-kek, rotate-kek, retire-kek, rotate-room, shred, status."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

        generate = sub.add_parser("generate", help="print a new keyring JSON (one random KEK)")
        generate.add_argument("--id", dest="kek_id", help="id of the key (default: random)")

        add = sub.add_parser("add-kek", help="add a fresh active KEK to the keyring file")
        add.add_argument("--file", help="keyring file (default: LIAISON_KEYRING_FILE)")
        add.add_argument("--id", dest="kek_id", help="id of the new key (default: random)")
        add.add_argument("--json", action="store_true", help="machine-readable output")

        rotate = sub.add_parser("rotate-kek", help="re-wrap every data key under the active KEK")
        rotate.add_argument("--json", action="store_true", help="machine-readable output")

        retire = sub.add_parser("retire-kek", help="remove an old KEK from the keyring file")
        retire.add_argument("retire_id", metavar="ID", help="the KEK id to remove")
        retire.add_argument("--file", help="keyring file (default: LIAISON_KEYRING_FILE)")
        retire.add_argument("--json", action="store_true", help="machine-readable output")

        room = sub.add_parser("rotate-room", help="start a new data key version for a room")
        room.add_argument("room_id", metavar="ROOM_ID", type=int)
        room.add_argument("--json", action="store_true", help="machine-readable output")

        shred = sub.add_parser(
            "shred", help="destroy the data keys of a closed exercise (irreversible)"
        )
        shred.add_argument("code", metavar="EXERCISE_CODE")
        shred.add_argument("--yes", action="store_true", help="do not ask for confirmation")
        shred.add_argument(
            "--waive-export",
            metavar="REASON",
            default="",
            help="shred although no signed export was made since the exercise closed; the "
            "reason goes on the record as the waiver",
        )
        shred.add_argument("--json", action="store_true", help="machine-readable output")

        status = sub.add_parser("status", help="show the keyring and which KEKs are in use")
        status.add_argument("--json", action="store_true", help="machine-readable output")

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"].replace("-", "_")
        try:
            getattr(self, f"do_{action}")(options)
        except (LiaisonError, CryptoError) as exc:
            raise CommandError(getattr(exc, "detail", None) or str(exc)) from None

    def _out(self, options: dict[str, Any], data: dict[str, Any], text: str) -> None:
        self.stdout.write(json.dumps(data, indent=2) if options.get("json") else text)

    # --- keyring -------------------------------------------------------------------------------

    def do_generate(self, options: dict[str, Any]) -> None:
        self.stdout.write(keyring.new_keyring_json(options.get("kek_id")), ending="")

    def do_add_kek(self, options: dict[str, Any]) -> None:
        added = key_service.add_kek(
            actor=None,
            path=options.get("file"),
            kek_id=options.get("kek_id"),
            actor_label=_operator(),
        )
        self._out(
            options,
            {
                "added": added.kek_id,
                "active": added.kek_id,
                "file": added.file,
                "keys": added.kek_ids,
            },
            f"Added KEK {added.kek_id} to {added.file}; it is now the active key "
            f"(keys: {', '.join(added.kek_ids)}).\n"
            "Next: `manage.py keys rotate-kek` to re-wrap the data keys under it.",
        )

    def do_rotate_kek(self, options: dict[str, Any]) -> None:
        result = key_service.rotate_kek(actor=None, actor_label=_operator())
        usage = roomkeys.kek_usage()
        retirable = sorted(set(keyring.get_keyring().kek_ids) - set(usage) - {result.active_kek})
        data = {
            "active": result.active_kek,
            "rewrapped": result.rewrapped,
            "already_current": result.already_current,
            "shredded": result.shredded,
            "previous_keks": result.previous_keks,
            "retirable": retirable,
        }
        previous = ", ".join(f"{k}: {n}" for k, n in result.previous_keks.items()) or "none"
        hint = (
            f"\nNo data key needs {', '.join(retirable)} any more: retire with "
            "`manage.py keys retire-kek ID`."
            if retirable
            else ""
        )
        self._out(
            options,
            data,
            f"Re-wrapped {result.rewrapped} data key(s) under {result.active_kek} "
            f"(from {previous}); {result.already_current} already current, "
            f"{result.shredded} shredded.{hint}",
        )

    def do_retire_kek(self, options: dict[str, Any]) -> None:
        retired = key_service.retire_kek(
            actor=None,
            kek_id=options["retire_id"],
            path=options.get("file"),
            actor_label=_operator(),
        )
        self._out(
            options,
            {"retired": retired.kek_id, "file": retired.file, "keys": retired.kek_ids},
            f"Retired KEK {retired.kek_id} from {retired.file} (keys left: "
            f"{', '.join(retired.kek_ids)}).",
        )

    def do_status(self, options: dict[str, Any]) -> None:
        ring = keyring.get_keyring()
        usage = roomkeys.kek_usage()
        path = keyring.keyring_file()
        data = {
            "source": str(path) if path else "LIAISON_KEYRING",
            "active": ring.active_id,
            "keys": {kek_id: usage.get(kek_id, 0) for kek_id in ring.kek_ids},
            "missing": sorted(set(usage) - set(ring.kek_ids)),
        }
        lines = [f"Keyring: {data['source']}"]
        for kek_id, count in data["keys"].items():
            mark = " (active)" if kek_id == ring.active_id else ""
            lines.append(f"  {kek_id}{mark}: wraps {count} data key(s)")
        for kek_id in data["missing"]:
            lines.append(f"  {kek_id}: NOT IN THE KEYRING, wraps {usage[kek_id]} data key(s)")
        self._out(options, data, "\n".join(lines))

    # --- data keys -----------------------------------------------------------------------------

    def do_rotate_room(self, options: dict[str, Any]) -> None:
        room = Room.objects.select_related("exercise").filter(pk=options["room_id"]).first()
        if room is None:
            raise CommandError(f"No room with id {options['room_id']}.")
        key = key_service.rotate_room(actor=None, room=room, actor_label=_operator())
        self._out(
            options,
            {
                "room": room.pk,
                "exercise": room.exercise.code,
                "version": key.version,
                "kek": key.kek_id,
            },
            f"Room {room.pk} ({room.exercise.code}/{room.name}) now seals new content with data "
            f"key version {key.version}.",
        )

    def do_shred(self, options: dict[str, Any]) -> None:
        code = options["code"]
        exercise = Exercise.objects.filter(code=code).first()
        if exercise is None:
            raise CommandError(f"No exercise with code {code!r}.")
        key_service.check_shreddable(exercise)
        blockers = retention.shred_blockers(exercise, waiving_export=bool(options["waive_export"]))
        if blockers:
            raise CommandError(
                f"Exercise {exercise.code} cannot be shredded: {'; '.join(blockers)}. "
                "Make a signed export (manage.py audit export) or pass --waive-export REASON; "
                "a legal hold must be lifted first. Nothing was shredded."
            )
        if not options["yes"]:
            rooms = exercise.rooms.count()
            self.stdout.write(
                f"This destroys the data keys of {rooms} room(s) of {exercise.code}: every "
                "message and file in them becomes unreadable, for good."
            )
            try:
                answer = input(f"Type the exercise code ({exercise.code}) to confirm: ")
            except EOFError:
                answer = ""
            if answer.strip() != exercise.code:
                raise CommandError("Confirmation did not match; nothing was shredded.")
        result = key_service.shred_exercise(
            actor=None,
            exercise=exercise,
            actor_label=_operator(),
            waive_export=options["waive_export"],
        )
        hint = (
            f"\nBackups taken before now still hold these keys wrapped by "
            f"{', '.join(result.wrapped_by)}: once they expire, rotate and retire that KEK to "
            "make the shredding final there too."
            if result.wrapped_by
            else ""
        )
        self._out(
            options,
            {
                "exercise": result.exercise_code,
                "rooms": len(result.room_ids),
                "keys_destroyed": result.keys_destroyed,
                "shredded_at": result.shredded_at,
                "wrapped_by": result.wrapped_by,
            },
            f"Shredded {result.exercise_code}: destroyed {result.keys_destroyed} data key(s) of "
            f"{len(result.room_ids)} room(s).{hint}",
        )
