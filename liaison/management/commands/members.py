"""Memberships from a script: list, add, remove (kept as a timestamp), change a role."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from liaison.errors import LiaisonError
from liaison.management.groups_cli import (
    add_common_arguments,
    emit,
    exercise_by_code,
    resolve_actor,
    user_by_email,
)
from liaison.models import GroupRole, Membership
from liaison.payloads.summaries import membership_summary
from liaison.services import memberships as service


class Command(BaseCommand):
    help = "List and change an exercise's members. Every change is audited under --actor."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        listing = sub.add_parser("list", help="current members (--all: removed ones too)")
        listing.add_argument("--exercise", required=True, metavar="CODE")
        listing.add_argument("--all", action="store_true", help="include removed members")
        listing.add_argument("--json", action="store_true", help="print machine-readable JSON")
        add = sub.add_parser("add", help="add an existing officer directly")
        add.add_argument("--exercise", required=True, metavar="CODE")
        add.add_argument("--email", required=True)
        add.add_argument("--role", choices=GroupRole.values, default=GroupRole.MEMBER)
        add_common_arguments(add)
        remove = sub.add_parser("remove", help="remove a member (their sockets close)")
        remove.add_argument("--exercise", required=True, metavar="CODE")
        remove.add_argument("--email", required=True)
        add_common_arguments(remove)
        role = sub.add_parser("role", help="change a member's role")
        role.add_argument("--exercise", required=True, metavar="CODE")
        role.add_argument("--email", required=True)
        role.add_argument("--role", required=True, choices=GroupRole.values)
        add_common_arguments(role)

    def handle(self, *args: Any, **options: Any) -> None:
        exercise = exercise_by_code(options["exercise"])
        action = options["action"]
        if action == "list":
            rows = Membership.objects.filter(exercise=exercise).select_related(
                "user", "user__agency"
            )
            if not options["all"]:
                rows = rows.filter(removed_at__isnull=True)
            members = [membership_summary(m) for m in rows.order_by("user__email", "created_at")]
            lines = [
                f"{m['email']:<36} {m['role']:<12} {m['agency'] or '-':<10}"
                + (f" removed {m['removed_at']}" if m["removed_at"] else "")
                for m in members
            ]
            emit(
                self,
                options["json"],
                {"exercise": exercise.code, "members": members},
                "\n".join(lines) or f"{exercise.code} has no members.",
            )
            return
        actor = resolve_actor(options["actor"])
        user = user_by_email(options["email"])
        try:
            if action == "add":
                membership = service.add_member(
                    actor=actor, exercise=exercise, user=user, role=options["role"]
                )
                text = f"{user.email} joined {exercise.code} as {membership.role}."
            else:
                current = Membership.objects.filter(
                    exercise=exercise, user=user, removed_at__isnull=True
                ).first()
                if current is None:
                    raise CommandError(f"{user.email} is not a member of {exercise.code}.")
                if action == "remove":
                    membership = service.remove_member(actor=actor, membership=current)
                    text = f"{user.email} was removed from {exercise.code}."
                else:
                    membership = service.change_role(
                        actor=actor, membership=current, role=options["role"]
                    )
                    text = f"{user.email} is now {membership.role} in {exercise.code}."
        except LiaisonError as error:
            raise CommandError(error.detail) from None
        emit(
            self,
            options["json"],
            {"exercise": exercise.code, "member": membership_summary(membership)},
            text,
        )
