"""The audit table is append-only in the database itself: UPDATE and DELETE are rejected.

TRUNCATE is a privilege, not a row operation: the production database role is granted no
TRUNCATE on this table (docs/architecture.md); a truncation is caught by the signed checkpoints.
"""

from django.db import migrations

PG_INSTALL = """
CREATE OR REPLACE FUNCTION liaison_audit_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'liaison_auditevent is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER liaison_auditevent_no_update BEFORE UPDATE ON liaison_auditevent
    FOR EACH ROW EXECUTE FUNCTION liaison_audit_append_only();
CREATE TRIGGER liaison_auditevent_no_delete BEFORE DELETE ON liaison_auditevent
    FOR EACH ROW EXECUTE FUNCTION liaison_audit_append_only();
"""
PG_REMOVE = """
DROP TRIGGER IF EXISTS liaison_auditevent_no_update ON liaison_auditevent;
DROP TRIGGER IF EXISTS liaison_auditevent_no_delete ON liaison_auditevent;
DROP FUNCTION IF EXISTS liaison_audit_append_only();
"""
SQLITE_INSTALL = [
    """CREATE TRIGGER liaison_auditevent_no_update BEFORE UPDATE ON liaison_auditevent
       BEGIN SELECT RAISE(ABORT, 'liaison_auditevent is append-only: UPDATE refused'); END;""",
    """CREATE TRIGGER liaison_auditevent_no_delete BEFORE DELETE ON liaison_auditevent
       BEGIN SELECT RAISE(ABORT, 'liaison_auditevent is append-only: DELETE refused'); END;""",
]
SQLITE_REMOVE = [
    "DROP TRIGGER IF EXISTS liaison_auditevent_no_update;",
    "DROP TRIGGER IF EXISTS liaison_auditevent_no_delete;",
]


def install(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(PG_INSTALL, params=None)
    elif schema_editor.connection.vendor == "sqlite":
        for statement in SQLITE_INSTALL:
            schema_editor.execute(statement)


def remove(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(PG_REMOVE, params=None)
    elif schema_editor.connection.vendor == "sqlite":
        for statement in SQLITE_REMOVE:
            schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [("liaison", "0001_initial")]
    operations = [migrations.RunPython(install, remove)]
