"""Two database roles on PostgreSQL (liaison/services/database_roles.py, migration 0005,
``manage.py db_roles``, ``manage.py migrate``): the application's role may INSERT and SELECT
audit events and nothing more, cannot truncate the log or disable its triggers; TRUNCATE is
refused by a statement-level trigger even for the owner.

The tests run as the database's owner (a superuser here) and act as the application role with
``SET LOCAL ROLE``, inside the test's transaction, so the role and its grants vanish with it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, transaction

from liaison import audit
from liaison.models import AuditEvent, Message, MessageRevision, Room, User
from liaison.services import database_roles
from liaison.services.messaging import edit_message, send_message

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _needs_postgresql() -> None:
    if connection.vendor != "postgresql":
        pytest.skip(
            "needs PostgreSQL (DATABASE_URL=postgres://...): database roles, privileges and "
            "TRUNCATE triggers do not exist on SQLite"
        )


def run(sql: str, params: list | None = None) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall() if cursor.description else []


def refused(sql: str) -> str:
    """The database's refusal of ``sql`` (which must fail), its effects rolled back."""
    try:
        with transaction.atomic():
            run(sql)
    except DatabaseError as error:
        return str(error)
    raise AssertionError(f"{sql!r} was allowed")


def fresh_role_name() -> str:
    return f"liaison_app_{uuid.uuid4().hex[:10]}"


@pytest.fixture
def app_role() -> str:
    """A new application role with its privileges, as ``manage.py migrate`` leaves it."""
    name = fresh_role_name()
    run(f"CREATE ROLE {name} NOLOGIN")
    report = database_roles.ensure_app_role(connection=connection, role=name)
    assert report.granted
    assert report.problems == []
    return name


@pytest.fixture
def as_app_role(app_role: str) -> Iterator[str]:
    """The rest of the test's transaction runs as the application role."""
    run(f"SET LOCAL ROLE {app_role}")
    yield app_role
    run("RESET ROLE")


# --- TRUNCATE is refused by a trigger, whoever asks ---------------------------------------------


@pytest.mark.parametrize("table", ["liaison_auditevent", "liaison_message"])
def test_even_the_owner_cannot_truncate_the_audit_log_or_a_message_chain(table: str) -> None:
    audit.record(actor=None, action="test.event")
    assert "cannot be truncated" in refused(f"TRUNCATE {table} CASCADE")
    assert AuditEvent.objects.count() == 1


# --- the application role ----------------------------------------------------------------------


def test_the_application_role_appends_and_reads_audit_events(as_app_role: str) -> None:
    first = audit.record(actor=None, action="test.first")
    second = audit.record(actor=None, action="test.second")
    assert second.prev_hash == first.hash
    assert run("SELECT current_user")[0][0] == as_app_role
    assert AuditEvent.objects.count() == 2


def test_the_application_role_cannot_truncate_the_audit_log(as_app_role: str) -> None:
    audit.record(actor=None, action="test.event")
    assert "permission denied" in refused("TRUNCATE liaison_auditevent")
    assert "permission denied" in refused("TRUNCATE liaison_message")
    assert AuditEvent.objects.count() == 1


@pytest.mark.parametrize(
    "statement",
    [
        "ALTER TABLE liaison_auditevent DISABLE TRIGGER liaison_auditevent_no_update",
        "ALTER TABLE liaison_auditevent DISABLE TRIGGER liaison_auditevent_no_truncate",
        "ALTER TABLE liaison_auditevent DISABLE TRIGGER ALL",
        "DROP TRIGGER liaison_auditevent_no_delete ON liaison_auditevent",
    ],
    ids=["update-trigger", "truncate-trigger", "all-triggers", "drop-trigger"],
)
def test_the_application_role_cannot_disable_or_drop_the_audit_triggers(
    as_app_role: str, statement: str
) -> None:
    assert "must be owner" in refused(statement)


def test_the_application_role_cannot_switch_triggers_off_for_its_session(
    as_app_role: str,
) -> None:
    assert "permission denied" in refused("SET session_replication_role = replica")


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE liaison_auditevent SET action = 'rewritten'",
        "DELETE FROM liaison_auditevent",
        "INSERT INTO django_migrations (app, name, applied) VALUES ('x', 'y', now())",
    ],
    ids=["update", "delete", "migration-history"],
)
def test_the_application_role_holds_no_privilege_to_rewrite_history(
    as_app_role: str, statement: str
) -> None:
    audit.record(actor=None, action="test.event")
    assert "permission denied" in refused(statement)


def test_the_application_role_does_its_everyday_work(
    uk_officer: User, room: Room, as_app_role: str
) -> None:
    """Everything else is plain DML: a message is stored and its room's chain moves on with
    it; an edit stores a revision and appends an audit event."""
    sent = send_message(sender=uk_officer, room_id=room.pk, client_id="c-1", body="cleared")
    message = Message.objects.get(pk=sent.message.pk)
    assert message.seq == 1
    room.refresh_from_db()
    assert (room.last_seq, room.chain_head) == (1, message.chain_hash)
    edit_message(user=uk_officer, room_id=room.pk, seq=1, body="cleared at 14:05")
    assert MessageRevision.objects.filter(message=message).count() == 1
    assert AuditEvent.objects.filter(action="message.edited", target_id=str(message.pk)).exists()


# --- checking and setting up the roles ----------------------------------------------------------


def test_a_fresh_application_role_has_no_problems_and_an_owner_has_several(
    app_role: str,
) -> None:
    assert database_roles.role_problems(connection=connection, role=app_role) == []
    (owner,) = run("SELECT current_user")[0]
    problems = database_roles.role_problems(connection=connection, role=owner)
    assert any("owns liaison_auditevent" in p for p in problems)
    assert any("superuser" in p for p in problems)


def test_a_role_granted_update_on_the_audit_log_is_reported(app_role: str) -> None:
    run(f"GRANT UPDATE, TRUNCATE ON liaison_auditevent TO {app_role}")
    problems = database_roles.role_problems(connection=connection, role=app_role)
    assert f"role {app_role} holds UPDATE on liaison_auditevent" in problems
    assert f"role {app_role} holds TRUNCATE on liaison_auditevent" in problems
    database_roles.grant_app_role(connection=connection, role=app_role)  # applied again: fixed
    assert database_roles.role_problems(connection=connection, role=app_role) == []


def test_db_roles_creates_the_role_and_grants_it(tmp_path: Path, capsys) -> None:
    name = fresh_role_name()
    secret = tmp_path / "app_password"
    secret.write_text("s3cret-for-the-app\n")
    call_command("db_roles", app_role=name, password_file=str(secret))
    assert f"Created the role {name}." in capsys.readouterr().out
    assert run("SELECT rolcanlogin, rolsuper FROM pg_roles WHERE rolname = %s", [name]) == [
        (True, False)
    ]
    assert run("SELECT has_table_privilege(%s, 'liaison_auditevent', 'INSERT')", [name]) == [
        (True,)
    ]
    call_command("db_roles", app_role=name, check=True)


def test_db_roles_fails_for_a_missing_role_without_a_password() -> None:
    with pytest.raises(CommandError, match="does not exist"):
        call_command("db_roles", app_role=fresh_role_name(), password_file="")


def test_db_roles_refuses_a_name_that_is_not_a_plain_identifier() -> None:
    with pytest.raises(CommandError, match="not a usable role name"):
        call_command("db_roles", app_role='app"; DROP TABLE x; --', password_file="")


def test_migrate_grants_the_configured_application_role(settings, tmp_path: Path) -> None:
    name = fresh_role_name()
    secret = tmp_path / "app_password"
    secret.write_text("another-secret")
    settings.LIAISON_DB_APP_ROLE = name
    settings.LIAISON_DB_APP_PASSWORD_FILE = str(secret)
    call_command("migrate", verbosity=0)
    assert database_roles.role_exists(connection=connection, role=name)
    assert database_roles.role_problems(connection=connection, role=name) == []
    assert run("SELECT has_table_privilege(%s, 'liaison_message', 'UPDATE')", [name]) == [(True,)]


def test_migration_0005_grants_an_existing_role(settings) -> None:
    import importlib

    migration = importlib.import_module("liaison.migrations.0005_audit_no_truncate_and_app_role")
    name = fresh_role_name()
    run(f"CREATE ROLE {name} NOLOGIN")
    settings.LIAISON_DB_APP_ROLE = name
    run(migration.PG_REMOVE)

    class Editor:
        def __init__(self) -> None:
            self.connection = connection

        def execute(self, sql: str, params: object = None) -> None:
            run(sql)

    migration.install(None, Editor())
    assert database_roles.role_problems(connection=connection, role=name) == []
    assert run(
        "SELECT count(*) FROM pg_trigger WHERE tgname LIKE '%%_no_truncate' AND NOT tgisinternal"
    ) == [(3,)]
