"""``manage.py migrate`` as the owner role, then the application role's privileges.

With ``DATABASE_MIGRATE_URL`` set, migrations run on the "owner" connection by default (the
application's own role may not create or alter tables). Afterwards, when
``LIAISON_DB_APP_ROLE`` names the application's role on PostgreSQL, its privileges are applied
again (liaison/services/database_roles.py): tables a migration created get plain reads and
writes, the audit log INSERT and SELECT only. The role is created first when it is missing and
``LIAISON_DB_APP_PASSWORD_FILE`` holds its password.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import CommandError, CommandParser
from django.core.management.commands.migrate import Command as DjangoMigrate
from django.db import connections

from liaison.errors import Invalid
from liaison.management.commands.db_roles import read_password
from liaison.services import database_roles

OWNER_ALIAS = "owner"


class Command(DjangoMigrate):
    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        if OWNER_ALIAS in settings.DATABASES:
            parser.set_defaults(database=OWNER_ALIAS)

    def handle(self, *args: Any, **options: Any) -> None:
        super().handle(*args, **options)
        role = settings.LIAISON_DB_APP_ROLE
        connection = connections[options["database"]]
        if not role or connection.vendor != "postgresql" or options.get("plan"):
            return
        password = read_password(settings.LIAISON_DB_APP_PASSWORD_FILE)
        try:
            report = database_roles.ensure_app_role(
                connection=connection, role=role, password=password
            )
        except Invalid as error:
            raise CommandError(str(error.detail)) from None
        if report.created:
            self.stdout.write(f"Created the application role {role}.")
        if report.granted:
            self.stdout.write(f"Granted the application role {role} its privileges.")
        for problem in report.problems:
            self.stderr.write(self.style.WARNING(f"Database roles: {problem}."))
