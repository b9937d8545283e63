"""The audit chain itself: appends, append-only enforcement, concurrency, the signing key."""

from __future__ import annotations

import base64
import threading
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.db import DatabaseError, connection, connections, transaction

from liaison import audit, audit_signing, audit_verify
from liaison.errors import AccessDenied
from liaison.models import AuditEvent, User
from tests.audit_helpers import record_events


@pytest.mark.django_db
def test_each_event_is_chained_to_the_one_before(uk_officer: User) -> None:
    first = audit.record(actor=uk_officer, action="test.first", target=uk_officer, ip="10.0.0.1")
    second = audit.record(actor=None, actor_label="cli", action="test.second", note="x")

    assert (first.seq, second.seq) == (1, 2)
    assert first.prev_hash == audit.GENESIS_HASH
    assert second.prev_hash == first.hash
    stored = AuditEvent.objects.get(seq=1)
    assert audit.compute_hash(stored) == stored.hash
    assert (stored.actor_label, stored.target_type, stored.target_id) == (
        "olivia@hmrc.example",
        "user",
        str(uk_officer.pk),
    )


@pytest.mark.django_db
def test_an_event_still_hashes_the_same_after_the_database_round_trip() -> None:
    audit.record(
        actor=None,
        action="test.round_trip",
        ip="::ffff:192.0.2.7",
        nested={"b": [1, 2.5, "三"], "a": None},
        when=__import__("datetime").date(2026, 7, 1),
    )
    stored = AuditEvent.objects.get(seq=1)
    assert stored.ip == "192.0.2.7"
    assert stored.details["when"] == "2026-07-01"
    assert audit.compute_hash(stored) == stored.hash
    assert audit_verify.verify(checkpoints=False).ok


@pytest.mark.django_db
def test_an_unparseable_address_is_not_stored() -> None:
    event = audit.record(actor=None, action="test.ip", ip="not-an-address")
    assert event.ip is None
    assert audit.normalise_ip("2001:DB8::1") == "2001:db8::1"


@pytest.mark.django_db
def test_a_denied_attempt_is_recorded_with_where_it_came_from(uk_officer: User) -> None:
    error = AccessDenied(target_type="room", target_id="999")
    audit.record_denied(
        actor=uk_officer, error=error, ip="10.0.0.9", via="ws", path="/ws/rooms/999/"
    )
    event = AuditEvent.objects.get(action="access.denied")
    assert (event.actor_id, event.target_type, event.target_id) == (uk_officer.pk, "room", "999")
    assert event.details == {"via": "ws", "path": "/ws/rooms/999/", "reason": "not_found"}


# --- append-only in the database ------------------------------------------------------------------


@pytest.mark.django_db
def test_updating_an_audit_row_is_refused_by_the_database() -> None:
    record_events(3)
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(seq=2).update(action="covered.up")
    assert AuditEvent.objects.get(seq=2).action == "test.event"


@pytest.mark.django_db
def test_saving_a_changed_audit_row_is_refused_by_the_database() -> None:
    record_events(1)
    event = AuditEvent.objects.get(seq=1)
    event.actor_label = "someone-else"
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        event.save()


@pytest.mark.django_db
def test_deleting_an_audit_row_is_refused_by_the_database() -> None:
    record_events(3)
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(seq=3).delete()
    assert AuditEvent.objects.count() == 3


@pytest.mark.django_db
def test_raw_sql_cannot_update_or_delete_audit_rows_either() -> None:
    record_events(2)
    for statement in (
        "UPDATE liaison_auditevent SET action = 'x'",
        "DELETE FROM liaison_auditevent",
    ):
        with (
            pytest.raises(DatabaseError, match="append-only"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(statement)
    assert AuditEvent.objects.count() == 2


@pytest.mark.django_db
def test_the_triggers_exist_on_this_database() -> None:
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT tgname FROM pg_trigger WHERE tgrelid = 'liaison_auditevent'::regclass "
                "AND NOT tgisinternal ORDER BY tgname"
            )
        else:
            cursor.execute(
                "SELECT name FROM sqlite_master WHERE type = 'trigger' "
                "AND tbl_name = 'liaison_auditevent' ORDER BY name"
            )
        names = [row[0] for row in cursor.fetchall()]
    assert names == ["liaison_auditevent_no_delete", "liaison_auditevent_no_update"]


# --- concurrency ------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_concurrent_appends_from_eight_threads_keep_the_chain_valid() -> None:
    if connection.vendor != "postgresql":
        pytest.skip(
            "SQLite has one writer at a time by construction (IMMEDIATE transactions); the "
            "concurrent appenders test PostgreSQL's advisory lock"
        )
    per_thread, threads = 25, 8
    start = threading.Barrier(threads)
    failures: list[BaseException] = []

    def append(worker: int) -> None:
        try:
            start.wait()
            for number in range(per_thread):
                with transaction.atomic():
                    audit.record(actor=None, action="test.concurrent", worker=worker, n=number)
        except BaseException as exc:  # reported below, in the main thread
            failures.append(exc)
        finally:
            connections.close_all()

    workers = [threading.Thread(target=append, args=(w,)) for w in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)

    assert not failures, failures
    seqs = list(AuditEvent.objects.order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, threads * per_thread + 1))
    report = audit_verify.verify(checkpoints=False)
    assert report.ok, report.summary()
    assert report.events_checked == threads * per_thread


# --- the signing key ----------------------------------------------------------------------------


@pytest.fixture
def fresh_signing_key():
    audit_signing.reset_signing_key_cache()
    yield
    audit_signing.reset_signing_key_cache()


def test_development_generates_a_signing_key_under_var_once(
    settings, tmp_path: Path, fresh_signing_key: None
) -> None:
    settings.VAR_DIR = tmp_path
    first = audit_signing.public_key_b64()
    audit_signing.reset_signing_key_cache()
    assert audit_signing.public_key_b64() == first
    key_file = tmp_path / audit_signing.DEV_KEY_FILE_NAME
    assert key_file.stat().st_mode & 0o777 == 0o600


def test_the_signing_key_file_setting_wins(settings, tmp_path: Path, fresh_signing_key) -> None:
    key = Ed25519PrivateKey.generate()
    path = tmp_path / "audit.key"
    path.write_text(_raw_b64(key))
    settings.LIAISON_AUDIT_SIGNING_KEY_FILE = str(path)
    assert audit_signing.public_key_b64() == audit_signing.public_key_b64(key.public_key())


def test_a_pem_signing_key_file_is_accepted(settings, tmp_path: Path, fresh_signing_key) -> None:
    from cryptography.hazmat.primitives import serialization

    key = Ed25519PrivateKey.generate()
    path = tmp_path / "audit.pem"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    settings.LIAISON_AUDIT_SIGNING_KEY_FILE = str(path)
    assert audit_signing.public_key_b64() == audit_signing.public_key_b64(key.public_key())


def _raw_b64(key: Ed25519PrivateKey) -> str:
    from cryptography.hazmat.primitives import serialization

    raw = key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    return base64.b64encode(raw).decode()


def test_the_keyring_can_carry_the_signing_key(settings, tmp_path: Path, fresh_signing_key) -> None:
    import json

    from liaison.crypto.keyring import reset_keyring_cache

    secret = audit_signing.new_private_key_text().strip()
    keyring = {
        "active": "k1",
        "keys": {"k1": base64.b64encode(b"k" * 32).decode()},
        "audit_signing_key": secret,
    }
    settings.LIAISON_KEYRING_JSON = json.dumps(keyring)
    settings.LIAISON_AUDIT_SIGNING_KEY_FILE = ""
    try:
        expected = audit_signing._private_from_text(secret, source="test").public_key()
        assert audit_signing.public_key_b64() == audit_signing.public_key_b64(expected)
    finally:
        reset_keyring_cache()


def test_production_without_a_signing_key_is_refused_clearly(
    settings, fresh_signing_key: None
) -> None:
    import json

    settings.LIAISON_KEYRING_AUTOCREATE = False
    settings.LIAISON_KEYRING_JSON = json.dumps(
        {"active": "k1", "keys": {"k1": base64.b64encode(b"k" * 32).decode()}}
    )
    with pytest.raises(audit_signing.SigningKeyError, match="No audit signing key"):
        audit_signing.load_signing_key()


@pytest.mark.parametrize(
    ("content", "problem"),
    [("not base64!", "base64"), (base64.b64encode(b"short").decode(), "32 bytes")],
)
def test_a_malformed_signing_key_file_is_named(
    settings, tmp_path: Path, fresh_signing_key: None, content: str, problem: str
) -> None:
    path = tmp_path / "audit.key"
    path.write_text(content)
    settings.LIAISON_AUDIT_SIGNING_KEY_FILE = str(path)
    with pytest.raises(audit_signing.SigningKeyError, match=problem):
        audit_signing.load_signing_key()


def test_a_missing_signing_key_file_is_named(settings, tmp_path: Path, fresh_signing_key) -> None:
    settings.LIAISON_AUDIT_SIGNING_KEY_FILE = str(tmp_path / "absent.key")
    with pytest.raises(audit_signing.SigningKeyError, match="does not exist"):
        audit_signing.load_signing_key()


def test_public_key_command_prints_the_key(capsys: pytest.CaptureFixture[str]) -> None:
    from django.core.management import call_command

    call_command("audit", "public-key")
    printed = capsys.readouterr().out.strip()
    assert printed == audit_signing.public_key_b64()
    assert len(base64.b64decode(printed)) == 32
    call_command("audit", "public-key", "--pem")
    assert "BEGIN PUBLIC KEY" in capsys.readouterr().out


@pytest.mark.django_db
def test_an_event_stamped_on_a_whole_second_still_verifies() -> None:
    import datetime as dt

    import time_machine

    with time_machine.travel(dt.datetime(2026, 7, 1, 12, 0, 0, tzinfo=dt.UTC), tick=False):
        event = audit.record(actor=None, action="test.whole_second")
    assert event.created_at.microsecond == 0
    assert audit_verify.verify(checkpoints=False).ok
