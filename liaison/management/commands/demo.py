"""Load the demo world and print its accounts (``--json`` for scripts)."""

from __future__ import annotations

import json

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from liaison.services.demo import load_demo


class Command(BaseCommand):
    help = "Create demo agencies, users and an exercise (idempotent). Development only."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true", help="print machine-readable JSON")
        parser.add_argument(
            "--force", action="store_true", help="run even in production mode (never do this)"
        )

    def handle(self, *args, **options) -> None:
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
        for exercise in world["exercises"]:
            rooms = ", ".join(room["name"] for room in exercise["rooms"])
            self.stdout.write(
                f"  exercise {exercise['code']} ({exercise['status']}): rooms {rooms}"
            )
