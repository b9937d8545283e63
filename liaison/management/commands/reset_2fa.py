"""Reset someone's two-factor authentication, for a person who lost their authenticator.

    manage.py reset_2fa EMAIL [--actor ADMIN_EMAIL]

The same service as the button on the provisioning pages (``accounts.reset_two_factor``): their
authenticator and recovery codes go, every session of theirs ends, they enrol again at their
next sign-in, and the audit log records ``auth.2fa_reset`` under the acting administrator.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from liaison.errors import LiaisonError
from liaison.management.groups_cli import resolve_actor, user_by_email
from liaison.services import accounts


class Command(BaseCommand):
    help = (
        "Reset an account's two-factor authentication (authenticator, recovery codes, "
        "sessions); audited under --actor."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("email", metavar="EMAIL", help="the account to reset")
        parser.add_argument(
            "--actor",
            metavar="EMAIL",
            help="the administrator recorded as acting (default: the first administrator)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        actor = resolve_actor(options["actor"])
        user = user_by_email(options["email"])
        try:
            accounts.reset_two_factor(actor=actor, user=user, ip=None)
        except LiaisonError as error:
            raise CommandError(str(error.detail)) from None
        self.stdout.write(
            f"Two-factor authentication of {user.email} was reset by {actor.email}: they set "
            "it up again at their next sign-in."
        )
