"""Scripted provisioning of exercises: create, activate, close, archive, list, add-room, and
their retention: hold and release (the legal hold), waive-export."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from liaison.errors import LiaisonError
from liaison.management.groups_cli import (
    add_common_arguments,
    agency_by_code,
    emit,
    exercise_by_code,
    parse_when,
    resolve_actor,
)
from liaison.models import Exercise
from liaison.payloads.summaries import exercise_summary, room_summary
from liaison.services import exercises as service
from liaison.services import retention, rooms


class Command(BaseCommand):
    help = "Create and run exercises (closed groups). Every change is audited under --actor."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create", help="create a draft exercise with a general room")
        create.add_argument("--code", required=True, help="like CFE-2026-07")
        create.add_argument("--title", required=True)
        create.add_argument("--starts", required=True, help="ISO 8601; UTC unless an offset")
        create.add_argument("--ends", required=True, help="ISO 8601; UTC unless an offset")
        create.add_argument(
            "--agency",
            action="append",
            required=True,
            metavar="CODE",
            help="participating agency code (repeat for each agency)",
        )
        create.add_argument("--commodity-focus", default="")
        create.add_argument(
            "--hs-code", action="append", default=[], metavar="PREFIX", help="repeatable"
        )
        create.add_argument("--lane", action="append", default=[], help="repeatable")
        create.add_argument("--retention-days", type=int, default=365)
        create.add_argument(
            "--history",
            choices=["shared", "joined"],
            default="shared",
            help="what members who join late may read: everything (shared, the default) or "
            "only from their joining (joined); fixed for the exercise's life",
        )
        create.add_argument("--activate", action="store_true", help="activate it at once")
        add_common_arguments(create)
        for name, text in (
            ("activate", "draft → active"),
            ("close", "active → closed (read-only)"),
            ("archive", "closed → archived (auditors only)"),
        ):
            transition = sub.add_parser(name, help=text)
            transition.add_argument("code")
            add_common_arguments(transition)
        hold = sub.add_parser("hold", help="put an exercise under legal hold (blocks shredding)")
        hold.add_argument("code")
        hold.add_argument("--reason", required=True, help="why (goes on the record)")
        add_common_arguments(hold)
        release = sub.add_parser("release", help="lift an exercise's legal hold")
        release.add_argument("code")
        add_common_arguments(release)
        waive = sub.add_parser(
            "waive-export",
            help="let a closed exercise be shredded without a signed export",
        )
        waive.add_argument("code")
        waive.add_argument("--reason", required=True, help="why (goes on the record)")
        add_common_arguments(waive)
        room = sub.add_parser("add-room", help="add a room to an exercise")
        room.add_argument("code")
        room.add_argument("--name", required=True, help="like felixstowe-nansha")
        room.add_argument("--title", default="")
        room.add_argument("--topic", default="")
        add_common_arguments(room)
        listing = sub.add_parser("list", help="list exercises")
        listing.add_argument(
            "--status", choices=["draft", "active", "closed", "archived", "shredded"]
        )
        listing.add_argument("--json", action="store_true", help="print machine-readable JSON")

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"]
        try:
            if action == "list":
                self._list(options)
            elif action == "create":
                self._create(options)
            elif action == "add-room":
                self._add_room(options)
            elif action in {"hold", "release", "waive-export"}:
                self._retention(action, options)
            else:
                self._transition(action, options)
        except LiaisonError as error:
            raise CommandError(error.detail) from None

    def _list(self, options: dict[str, Any]) -> None:
        exercises = Exercise.objects.order_by("-starts_at", "code")
        if options.get("status"):
            exercises = exercises.filter(status=options["status"])
        summaries = [exercise_summary(exercise) for exercise in exercises]
        lines = [
            f"{s['code']:<20} {s['status']:<9} {s['starts_at']} → {s['ends_at']}  "
            f"{len(s['members'])} members, rooms: {', '.join(r['name'] for r in s['rooms'])}"
            for s in summaries
        ]
        emit(self, options["json"], {"exercises": summaries}, "\n".join(lines) or "No exercises.")

    def _create(self, options: dict[str, Any]) -> None:
        actor = resolve_actor(options["actor"])
        exercise = service.create_exercise(
            actor=actor,
            code=options["code"],
            title=options["title"],
            commodity_focus=options["commodity_focus"],
            hs_codes=options["hs_code"],
            lanes=options["lane"],
            agencies=[agency_by_code(code) for code in options["agency"]],
            starts_at=parse_when(options["starts"], option="--starts"),
            ends_at=parse_when(options["ends"], option="--ends"),
            retention_days=options["retention_days"],
            history_visibility=options["history"],
        )
        if options["activate"]:
            exercise = service.activate_exercise(actor=actor, exercise=exercise)
        emit(
            self,
            options["json"],
            {"exercise": exercise_summary(exercise)},
            f"Created {exercise.code} (id {exercise.pk}, {exercise.status}).",
        )

    def _add_room(self, options: dict[str, Any]) -> None:
        actor = resolve_actor(options["actor"])
        exercise = exercise_by_code(options["code"])
        room = rooms.add_room(
            actor=actor,
            exercise=exercise,
            name=options["name"],
            title=options["title"],
            topic=options["topic"],
        )
        emit(
            self,
            options["json"],
            {"room": room_summary(room)},
            f"Added room {room.name} (id {room.pk}) to {exercise.code}.",
        )

    def _transition(self, action: str, options: dict[str, Any]) -> None:
        actor = resolve_actor(options["actor"])
        exercise = exercise_by_code(options["code"])
        run = {
            "activate": service.activate_exercise,
            "close": service.close_exercise,
            "archive": service.archive_exercise,
        }[action]
        exercise = run(actor=actor, exercise=exercise)
        emit(
            self,
            options["json"],
            {"exercise": exercise_summary(exercise)},
            f"{exercise.code} is now {exercise.status}.",
        )

    def _retention(self, action: str, options: dict[str, Any]) -> None:
        actor = resolve_actor(options["actor"])
        exercise = exercise_by_code(options["code"])
        if action == "hold":
            exercise = retention.set_legal_hold(
                actor=actor, exercise=exercise, reason=options["reason"]
            )
            text = f"{exercise.code} is under legal hold: nothing destroys its content."
        elif action == "release":
            exercise = retention.lift_legal_hold(actor=actor, exercise=exercise)
            text = f"The legal hold on {exercise.code} was lifted."
        else:
            exercise = retention.waive_export(
                actor=actor, exercise=exercise, reason=options["reason"]
            )
            text = f"{exercise.code} may be shredded without a signed export."
        emit(self, options["json"], {"exercise": exercise_summary(exercise)}, text)
