"""Load the demo world and print its accounts (``--json`` for scripts)."""

from __future__ import annotations

import json

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from liaison.errors import LiaisonError
from liaison.services.demo import current_demo_code, load_demo


class Command(BaseCommand):
    help = "Create demo agencies, users and an exercise (idempotent). Development only."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true", help="print machine-readable JSON")
        parser.add_argument(
            "--force", action="store_true", help="run even in production mode (never do this)"
        )
        parser.add_argument(
            "--otp",
            metavar="EMAIL",
            help="print that demo account's current sign-in code (development only)",
        )

    def handle(self, *args, **options) -> None:
        if options.get("otp"):
            self.print_code(options["otp"])
            return
        if settings.PRODUCTION and not options["force"]:
            raise CommandError(
                "Refusing to load demo accounts with known passwords in production mode "
                "(LIAISON_ENV=production). Use --force only on a throw-away installation."
            )
        world = load_demo()
        if options["json"]:
            self.stdout.write(json.dumps(world, indent=2, ensure_ascii=False))
            return
        self.stdout.write(f"Liaison demo at {world['base_url']}\n")
        for user in world["users"]:
            self.stdout.write(
                f"  {user['role']:<8} {user['email']:<34} {user['password']:<24} {user['display_name']} ({user['agency']})"
            )
        self.stdout.write(
            "  two-factor: `make otp EMAIL=<address>` prints an account's current code"
        )
        for exercise in world["exercises"]:
            rooms = ", ".join(room["name"] for room in exercise["rooms"])
            self.stdout.write(
                f"  exercise {exercise['code']} ({exercise['status']}): rooms {rooms}"
            )

    def print_code(self, email: str) -> None:
        """Two-factor stands in the way of trying the demo without a phone: print the code an
        authenticator app would show. Never in production, not even with --force."""
        if settings.PRODUCTION:
            raise CommandError(
                "Refusing to print sign-in codes in production mode (LIAISON_ENV=production)."
            )
        try:
            code = current_demo_code(email)
        except LiaisonError as error:
            raise CommandError(error.detail) from None
        self.stdout.write(code)
