"""The application's PostgreSQL role: create it, grant its privileges, check it.

    manage.py db_roles --app-role liaison_app [--password-file FILE] [--check]

Runs on the owner connection (``DATABASE_MIGRATE_URL``, the "owner" alias) when there is one.
The application role gets plain reads and writes on every table except the audit log, where it
may only INSERT and SELECT; it owns nothing, so it cannot disable or drop a trigger.
``manage.py migrate`` does the same after migrating when ``LIAISON_DB_APP_ROLE`` is set.
Exit status 1 when the role is missing or would still be able to rewrite the audit log.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connections

from liaison.errors import Invalid
from liaison.services import database_roles


def read_password(path: str | None) -> str | None:
    """The password in ``path`` (surrounding white space dropped), or ``None`` without a path."""
    if not path:
        return None
    try:
        password = Path(path).read_text().strip()
    except OSError as exc:
        raise CommandError(f"{path}: cannot be read ({exc.strerror}).") from None
    if not password:
        raise CommandError(f"{path} is empty.")
    return password


class Command(BaseCommand):
    help = (
        "Create the application's database role if needed and grant it its privileges: "
        "INSERT and SELECT only on the audit log (PostgreSQL)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--app-role",
            default=settings.LIAISON_DB_APP_ROLE,
            metavar="NAME",
            help="the role DATABASE_URL connects as (default: LIAISON_DB_APP_ROLE)",
        )
        parser.add_argument(
            "--password-file",
            default=settings.LIAISON_DB_APP_PASSWORD_FILE,
            metavar="FILE",
            help="its password: creates the role when missing, else sets the password",
        )
        parser.add_argument(
            "--check", action="store_true", help="only report problems, change nothing"
        )
        parser.add_argument(
            "--database",
            default="owner" if "owner" in settings.DATABASES else "default",
            help="the connection to act on (default: the owner's when configured)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        role = options["app_role"]
        if not role:
            raise CommandError("Name the application role: --app-role NAME or LIAISON_DB_APP_ROLE.")
        connection = connections[options["database"]]
        if connection.vendor != "postgresql":
            raise CommandError("Separate database roles exist on PostgreSQL only.")
        try:
            if options["check"]:
                problems = database_roles.role_problems(connection=connection, role=role)
            else:
                report = database_roles.ensure_app_role(
                    connection=connection,
                    role=role,
                    password=read_password(options["password_file"]),
                )
                if report.created:
                    self.stdout.write(f"Created the role {role}.")
                if report.granted:
                    self.stdout.write(
                        f"Granted {role} reads and writes, and INSERT and SELECT only on "
                        + ", ".join(database_roles.APPEND_ONLY_TABLES)
                        + "."
                    )
                problems = report.problems
        except Invalid as error:
            raise CommandError(str(error.detail)) from None
        if problems:
            raise CommandError("; ".join(problems), returncode=1)
        self.stdout.write(f"{role} cannot change, delete or truncate audit events.")
