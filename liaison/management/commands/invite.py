"""Invite an officer to an exercise from a script; prints the single-use link."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from liaison.errors import LiaisonError
from liaison.management.groups_cli import (
    add_common_arguments,
    agency_by_code,
    emit,
    exercise_by_code,
    resolve_actor,
)
from liaison.models import GroupRole
from liaison.payloads.summaries import invitation_summary
from liaison.services.invitations import create_invitation


class Command(BaseCommand):
    help = (
        "Invite an officer (bound to an e-mail and an agency) and print the link. "
        "The link is printed once and cannot be shown again."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--exercise", required=True, metavar="CODE")
        parser.add_argument("--email", required=True)
        parser.add_argument("--agency", required=True, metavar="CODE")
        parser.add_argument("--role", choices=GroupRole.values, default=GroupRole.MEMBER)
        parser.add_argument(
            "--ttl-hours", type=int, default=None, help="validity (default from settings)"
        )
        parser.add_argument(
            "--send-email", action="store_true", help="also e-mail the link to the officer"
        )
        add_common_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        actor = resolve_actor(options["actor"])
        exercise = exercise_by_code(options["exercise"])
        agency = agency_by_code(options["agency"])
        try:
            issued = create_invitation(
                actor=actor,
                exercise=exercise,
                email=options["email"],
                agency=agency,
                role=options["role"],
                ttl_hours=options["ttl_hours"],
                send_email=options["send_email"],
            )
        except LiaisonError as error:
            raise CommandError(error.detail) from None
        emit(
            self,
            options["json"],
            {
                "invitation": invitation_summary(issued.invitation),
                "url": issued.url,
                "emailed": issued.emailed,
                "email_error": issued.email_error or None,
            },
            issued.url,
        )
        if issued.email_error:
            self.stderr.write(issued.email_error)
