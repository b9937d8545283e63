"""TRUNCATE is refused on the audit log and the rooms' message chains, by a statement-level
trigger (row triggers never see a TRUNCATE); and the application role, when one is named by
``LIAISON_DB_APP_ROLE`` and exists, gets its privileges: INSERT and SELECT only on the audit
log (liaison/services/database_roles.py). PostgreSQL only: SQLite has no TRUNCATE, and its
row triggers (0002) already refuse a DELETE.

The triggers stop an accident or a role that holds TRUNCATE; the owner can still drop them,
which is why the application never connects as the owner and why checkpoints are signed.
"""

from django.conf import settings
from django.db import migrations

GUARDED_TABLES = ("liaison_auditevent", "liaison_message", "liaison_messagerevision")

PG_FUNCTION = """
CREATE OR REPLACE FUNCTION liaison_refuse_truncate() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION '% cannot be truncated', TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
"""


def trigger_name(table: str) -> str:
    return f"{table}_no_truncate"


PG_INSTALL = PG_FUNCTION + "".join(
    f"CREATE TRIGGER {trigger_name(table)} BEFORE TRUNCATE ON {table} "
    "FOR EACH STATEMENT EXECUTE FUNCTION liaison_refuse_truncate();\n"
    for table in GUARDED_TABLES
)
PG_REMOVE = (
    "".join(
        f"DROP TRIGGER IF EXISTS {trigger_name(table)} ON {table};\n" for table in GUARDED_TABLES
    )
    + "DROP FUNCTION IF EXISTS liaison_refuse_truncate();\n"
)


def install(apps, schema_editor):
    connection = schema_editor.connection
    if connection.vendor != "postgresql":
        return
    schema_editor.execute(PG_INSTALL, params=None)
    role = getattr(settings, "LIAISON_DB_APP_ROLE", "")
    if role:
        from liaison.services import database_roles

        if database_roles.role_exists(connection=connection, role=role):
            database_roles.grant_app_role(connection=connection, role=role)


def remove(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(PG_REMOVE, params=None)


class Migration(migrations.Migration):
    dependencies = [("liaison", "0004_realtime_access_epoch_and_worker")]
    operations = [migrations.RunPython(install, remove)]
