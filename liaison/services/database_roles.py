"""Two PostgreSQL roles: an owner that migrates, and the application's role that only works.

The owner role (``DATABASE_MIGRATE_URL``) owns every table, so only it can alter a table or
disable its triggers. The application role (``DATABASE_URL``, named by
``LIAISON_DB_APP_ROLE``) gets plain reads and writes everywhere except on the audit log, where it
may only INSERT and SELECT: it cannot UPDATE, DELETE or TRUNCATE an audit event, and as a
non-owner it cannot ``ALTER TABLE ... DISABLE TRIGGER`` or drop the append-only triggers.
Called by ``manage.py migrate`` (after migrating), ``manage.py db_roles`` and migration 0005,
always on the owner's connection.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from django.db.backends.base.base import BaseDatabaseWrapper

from liaison.errors import Invalid

# Tables whose rows the application may add and read but never change, remove or truncate.
APPEND_ONLY_TABLES = ("liaison_auditevent",)
# Tables the application may read only (the migration history is the owner's business).
READ_ONLY_TABLES = ("django_migrations",)
# Plain identifiers only: role names end up in DDL, which takes no bind parameters.
ROLE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


@dataclass
class RoleReport:
    role: str
    created: bool = False
    granted: bool = False
    problems: list[str] = field(default_factory=list)


def _clean_role(role: str) -> str:
    if not ROLE_NAME.match(role or ""):
        raise Invalid(
            f"{role!r} is not a usable role name: lower-case letters, digits and underscores, "
            "starting with a letter or an underscore."
        )
    return role


def _quoted(connection: BaseDatabaseWrapper, name: str) -> str:
    return connection.ops.quote_name(name)


def role_exists(*, connection: BaseDatabaseWrapper, role: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role])
        return cursor.fetchone() is not None


def role_problems(*, connection: BaseDatabaseWrapper, role: str) -> list[str]:
    """Why ``role`` would not be a safe application role (empty when it is)."""
    problems = []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT rolsuper, rolbypassrls, rolcreaterole FROM pg_roles WHERE rolname = %s",
            [role],
        )
        row = cursor.fetchone()
        if row is None:
            return [f"role {role} does not exist"]
        if row[0]:
            problems.append(f"role {role} is a superuser")
        if row[1]:
            problems.append(f"role {role} bypasses row-level security")
        if row[2]:
            problems.append(f"role {role} may create roles")
        cursor.execute(
            "SELECT c.relname, pg_get_userbyid(c.relowner) FROM pg_class c "
            "WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind = 'r' "
            "AND c.relname = ANY(%s) "
            "AND pg_has_role(%s, c.relowner, 'USAGE')",
            [list(APPEND_ONLY_TABLES), role],
        )
        for table, owner in cursor.fetchall():
            problems.append(
                f"role {role} owns {table} (or acts as its owner {owner}): run the migrations "
                "as a separate owner role (DATABASE_MIGRATE_URL) and REASSIGN OWNED BY "
                f"{role} TO that owner"
            )
        for table in sorted(_existing_tables(connection, list(APPEND_ONLY_TABLES))):
            for privilege in ("UPDATE", "DELETE", "TRUNCATE"):
                cursor.execute("SELECT has_table_privilege(%s, %s, %s)", [role, table, privilege])
                if cursor.fetchone()[0]:
                    problems.append(f"role {role} holds {privilege} on {table}")
    return problems


def create_role(*, connection: BaseDatabaseWrapper, role: str, password: str) -> None:
    """A login role with no special attributes (the owner needs CREATEROLE for this)."""
    from psycopg import sql  # only on PostgreSQL, where psycopg is the driver

    literal = sql.Literal(password).as_string(connection.connection)
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE ROLE {_quoted(connection, role)} LOGIN NOSUPERUSER NOCREATEDB "
            f"NOCREATEROLE NOBYPASSRLS PASSWORD {literal}"
        )


def grant_statements(*, connection: BaseDatabaseWrapper, role: str) -> list[str]:
    """The privileges of the application role, applied in full each time (idempotent)."""
    role_sql = _quoted(connection, _clean_role(role))
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_schema()")
        (schema,) = cursor.fetchone()
        cursor.execute("SELECT has_schema_privilege(%s, %s, 'USAGE')", [role, schema])
        (has_usage,) = cursor.fetchone()
    schema_sql = _quoted(connection, schema)
    # CONNECT and the schema's USAGE are PUBLIC's by default; granted only where they are not.
    statements = [] if has_usage else [f"GRANT USAGE ON SCHEMA {schema_sql} TO {role_sql}"]
    statements += [
        f"REVOKE ALL ON ALL TABLES IN SCHEMA {schema_sql} FROM {role_sql}",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {schema_sql} TO {role_sql}",
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {schema_sql} TO {role_sql}",
        # Tables a later migration creates (as this owner) get the same plain privileges.
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA {schema_sql} "
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {role_sql}",
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA {schema_sql} "
        f"GRANT USAGE, SELECT ON SEQUENCES TO {role_sql}",
    ]
    existing = _existing_tables(connection, [*APPEND_ONLY_TABLES, *READ_ONLY_TABLES])
    for table in APPEND_ONLY_TABLES:
        if table in existing:
            statements.append(
                f"REVOKE UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER "
                f"ON {_quoted(connection, table)} FROM {role_sql}"
            )
    for table in READ_ONLY_TABLES:
        if table in existing:
            statements.append(
                f"REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON {_quoted(connection, table)} "
                f"FROM {role_sql}"
            )
    return statements


def _existing_tables(connection: BaseDatabaseWrapper, names: list[str]) -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname FROM pg_class WHERE relnamespace = current_schema()::regnamespace "
            "AND relkind = 'r' AND relname = ANY(%s)",
            [names],
        )
        return {row[0] for row in cursor.fetchall()}


def grant_app_role(*, connection: BaseDatabaseWrapper, role: str) -> None:
    """Give ``role`` the application's privileges and nothing more."""
    with connection.cursor() as cursor:
        for statement in grant_statements(connection=connection, role=role):
            cursor.execute(statement)


def ensure_app_role(
    *, connection: BaseDatabaseWrapper, role: str, password: str | None = None
) -> RoleReport:
    """Create the application role if it is missing (when a password is given), grant its
    privileges, and report anything that would still let it rewrite the audit log."""
    if connection.vendor != "postgresql":
        raise Invalid("Separate database roles exist on PostgreSQL only.")
    report = RoleReport(role=_clean_role(role))
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user")
        (current,) = cursor.fetchone()
    if current == role:
        report.problems.append(
            f"connected as {role} itself: run this as the owner role (DATABASE_MIGRATE_URL)"
        )
        return report
    if not role_exists(connection=connection, role=role):
        if password is None:
            report.problems.append(
                f"role {role} does not exist: create it (manage.py db_roles --app-role {role} "
                "--password-file FILE)"
            )
            return report
        create_role(connection=connection, role=role, password=password)
        report.created = True
    elif password is not None:
        from psycopg import sql

        literal = sql.Literal(password).as_string(connection.connection)
        with connection.cursor() as cursor:
            cursor.execute(f"ALTER ROLE {_quoted(connection, role)} PASSWORD {literal}")
    grant_app_role(connection=connection, role=role)
    report.granted = True
    report.problems.extend(role_problems(connection=connection, role=role))
    return report
