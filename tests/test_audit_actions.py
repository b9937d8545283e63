"""Every security-relevant action produces its audit event: one parametrised test per action.

Each case performs the action the way the product does (a page, or the service a page, socket
or command calls) and the test finds the new event, chained and verifiable. A second test reads
the source for every action name ``audit.record`` is given, so an action added without a case
here fails the suite.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.test import Client

from liaison import crypto
from liaison.audit import verify as audit_verify
from liaison.audit import workspace
from liaison.crypto import roomkeys
from liaison.crypto.keyring import new_keyring_json
from liaison.errors import AccessDenied
from liaison.models import (
    Attachment,
    AuditEvent,
    ExerciseStatus,
    GroupRole,
    Membership,
    Message,
    Room,
    RoomKey,
    User,
)
from liaison.services import (
    accounts,
    acknowledgements,
    attachments,
    backups,
    exchange,
    exercises,
    invitations,
    keys,
    markings,
    memberships,
    messaging,
    reading,
    rooms,
    search,
    sessions,
    twofactor,
)
from liaison.services import reports as exchange_reports
from tests.audit_helpers import head_seq, say
from tests.exchange_support import SAMPLE_FILES, sample
from tests.factories import ExerciseFactory, UserFactory
from tests.security_support import (
    authenticator,
    code_step,
    password_step,
    sign_in_with_both_factors,
    wrong_code,
)

pytestmark = pytest.mark.django_db


class World:
    """The named actors, fetched from the fixtures on first use, plus a few helpers."""

    def __init__(self, request: pytest.FixtureRequest, tmp_path: Path) -> None:
        self._request = request
        self.tmp_path = tmp_path

    def __getattr__(self, name: str) -> Any:
        return self._request.getfixturevalue(name)

    def signed_in(self, user: User) -> Client:
        return self.login_as(Client(), user)

    def own_keyring(self) -> Path:
        """A keyring file of this test's own, configured as the keyring in use."""
        path = self.tmp_path / "keyring.json"
        path.write_text(new_keyring_json("first"))
        path.chmod(0o600)
        self.settings.LIAISON_KEYRING_JSON = ""
        self.settings.LIAISON_KEYRING_FILE = str(path)
        self.settings.LIAISON_KEYRING_AUTOCREATE = False
        crypto.reset_keyring_cache()
        return path

    def attachment_store(self) -> Path:
        location = self.tmp_path / "attachments"
        self.settings.STORAGES = {
            **self.settings.STORAGES,
            "attachments": {
                "BACKEND": "django.core.files.storage.FileSystemStorage",
                "OPTIONS": {"location": str(location)},
            },
        }
        return location

    def upload(self, user: User) -> Attachment:
        self.attachment_store()
        return attachments.upload_attachment(
            uploader=user,
            room_id=self.room.pk,
            filename="manifest.pdf",
            declared_type="application/pdf",
            chunks=[b"%PDF-1.7\n" + os.urandom(2000)],
        )

    def invitation(self) -> invitations.IssuedInvitation:
        return invitations.create_invitation(
            actor=self.admin,
            exercise=self.exercise,
            email="new.officer@hmrc.example",
            agency=self.hmrc,
        )


# --- how each action is performed -----------------------------------------------------------------


def _login(w: World) -> None:
    sign_in_with_both_factors(Client(), w.uk_officer, w.password)


def _login_failed(w: World) -> None:
    Client().post("/login/", {"username": w.uk_officer.email, "password": "wrong-password-1"})


def _logout(w: World) -> None:
    w.signed_in(w.uk_officer).post("/logout/")


def _locked_out(w: World) -> None:
    client = Client()
    for _ in range(django_settings.AXES_FAILURE_LIMIT):
        client.post("/login/", {"username": w.uk_officer.email, "password": "wrong-password-1"})


def _otp_failed(w: World) -> None:
    client = Client()
    device = authenticator(w.uk_officer)
    password_step(client, w.uk_officer, w.password)
    code_step(client, wrong_code(device))


def _enrolled(w: World) -> tuple[User, list[str]]:
    user = w.uk_officer
    device = twofactor.begin_enrolment(user=user)
    _, codes = twofactor.confirm_enrolment(user=user, token=twofactor.code_for(device), ip=None)
    return user, codes


def _recovery_code_used(w: World) -> None:
    user, codes = _enrolled(w)
    twofactor.verify_second_factor(user=user, code=codes[0], ip="10.1.1.1")


def _recovery_codes_regenerated(w: World) -> None:
    user, _ = _enrolled(w)
    twofactor.regenerate_recovery_codes(user=user, ip=None)


def _twofactor_reset(w: World) -> None:
    user, _ = _enrolled(w)
    accounts.reset_two_factor(actor=w.admin, user=user)


def _password_changed(w: World) -> None:
    accounts.change_password(
        user=w.uk_officer,
        current_password=w.password,
        new_password="a-new-long-passphrase-77",
        keep_session_key=None,
        ip=None,
    )


def _profile_changed(w: World) -> None:
    w.signed_in(w.uk_officer).post(
        "/account/profile/",
        {"display_name": "Olivia M. Hughes", "time_zone": "Europe/Dublin", "language": ""},
    )


def _language_changed(w: World) -> None:
    w.signed_in(w.uk_officer).post("/i18n/language/", {"language": "zh-hans", "next": "/"})


def _session(w: World) -> Any:
    return sessions.start_session(user=w.uk_officer, session_key=uuid.uuid4().hex, ip=None)


def _session_expired(w: World) -> None:
    row = _session(w)
    sessions.expire_session(user=w.uk_officer, session_key=row.session_key, reason="idle", ip=None)


def _session_revoked(w: World) -> None:
    sessions.revoke_session(actor=w.uk_officer, session_id=_session(w).pk, ip=None)


def _logout_everywhere(w: World) -> None:
    _session(w)
    sessions.end_other_sessions(actor=w.uk_officer, keep_session_key=None, ip=None)


def _access_denied(w: World) -> None:
    w.signed_in(w.outsider).get(f"/audit/rooms/{w.room.pk}/")


def _exercise_created(w: World) -> None:
    now = dt.datetime.now(dt.UTC)
    exercises.create_exercise(
        actor=w.admin,
        code="CFE-2026-09",
        title="E-waste CFE",
        agencies=[w.hmrc, w.gacc],
        starts_at=now,
        ends_at=now + dt.timedelta(days=30),
    )


def _exercise_updated(w: World) -> None:
    exercises.update_exercise(actor=w.admin, exercise=w.exercise, title="Solid waste CFE, phase 2")


def _exercise_activated(w: World) -> None:
    draft = ExerciseFactory(code="CFE-DRAFT", created_by=w.admin, status=ExerciseStatus.DRAFT)
    exercises.activate_exercise(actor=w.admin, exercise=draft)


def _exercise_closed(w: World) -> None:
    exercises.close_exercise(actor=w.admin, exercise=w.exercise)


def _exercise_archived(w: World) -> None:
    exercises.close_exercise(actor=w.admin, exercise=w.exercise)
    exercises.archive_exercise(actor=w.admin, exercise=w.exercise)


def _room_created(w: World) -> None:
    rooms.add_room(actor=w.admin, exercise=w.exercise, name="nansha-inspections")


def _invitation_created(w: World) -> None:
    w.invitation()


def _invitation_revoked(w: World) -> None:
    invitations.revoke_invitation(actor=w.admin, invitation=w.invitation().invitation)


def _invitation_accepted(w: World) -> None:
    invitations.accept_invitation(
        token=w.invitation().token, display_name="New Officer", password="a-long-passphrase-42"
    )


def _invitation_refused(w: World) -> None:
    issued = w.invitation()
    with pytest.raises(invitations.InvitationRefused):
        invitations.accept_invitation(token=issued.token, user=w.uk_officer)


def _membership(w: World) -> Membership:
    newcomer = UserFactory(email="newcomer@ukbf.example", agency=w.ukbf)
    return memberships.add_member(actor=w.admin, exercise=w.exercise, user=newcomer)


def _membership_added(w: World) -> None:
    _membership(w)


def _membership_removed(w: World) -> None:
    memberships.remove_member(actor=w.admin, membership=_membership(w))


def _membership_role_changed(w: World) -> None:
    memberships.change_role(actor=w.admin, membership=_membership(w), role=GroupRole.OBSERVER)


def _message_edited(w: World) -> None:
    (message,) = say(w.uk_officer, w.room, "first text")
    messaging.edit_message(user=w.uk_officer, room_id=w.room.pk, seq=message.seq, body="second")


def _message_deleted(w: World) -> None:
    (message,) = say(w.uk_officer, w.room, "oops")
    messaging.delete_message(user=w.uk_officer, room_id=w.room.pk, seq=message.seq)


def _message_acknowledged(w: World) -> None:
    messaging.send_message(
        sender=w.uk_officer,
        room_id=w.room.pk,
        client_id="ack-me",
        body="Hold MSCU1234567 please.",
        ack={"users": [w.gz_officer.pk]},
    )
    acknowledgements.acknowledge(user=w.gz_officer, room_id=w.room.pk, seq=1)


def _notification_emailed(w: World) -> None:
    messaging.send_message(
        sender=w.uk_officer,
        room_id=w.room.pk,
        client_id="mention",
        body="@Li Wei MSCU1234567",
        mentions={"users": [w.gz_officer.pk]},
    )


def _messages_searched(w: World) -> None:
    say(w.uk_officer, w.room, "MSCU1234567 on the quay")
    search.search_messages(user=w.gz_officer, filters=search.SearchFilters(query="MSCU1234567"))


def _markings_changed(w: World) -> None:
    markings.set_markings(
        actor=w.admin,
        exercise=w.exercise,
        markings=["OFFICIAL", "OFFICIAL-SENSITIVE"],
        default="OFFICIAL",
        observer_download_limit="OFFICIAL",
    )


def _message_integrity_failed(w: World) -> None:
    """The room's wrapped data key is altered (an altered message would also break the room's
    chain, which the verification below would report)."""
    say(w.uk_officer, w.room, "MSCU1234567 cleared")
    key = RoomKey.objects.get(room=w.room)
    wrapped = bytearray(bytes(key.wrapped_key))
    wrapped[-1] ^= 0x01
    RoomKey.objects.filter(pk=key.pk).update(wrapped_key=bytes(wrapped))
    roomkeys.clear_cache()
    with w.django_capture_on_commit_callbacks(execute=True):
        page = reading.read_history(user=w.gz_officer, room_id=w.room.pk, via="api")
    assert page.messages[0]["error"] == "integrity"


def _attachment_uploaded(w: World) -> None:
    w.upload(w.uk_officer)


def _attachment_refused(w: World) -> None:
    w.attachment_store()
    with pytest.raises(Exception, match="not accepted"):
        attachments.upload_attachment(
            uploader=w.uk_officer,
            room_id=w.room.pk,
            filename="run.exe",
            declared_type="application/octet-stream",
            chunks=[b"MZ\x90\x00" + os.urandom(500)],
        )


def _sent_attachment(w: World) -> Attachment:
    attachment = w.upload(w.uk_officer)
    messaging.send_message(
        sender=w.uk_officer,
        room_id=w.room.pk,
        client_id="with-file",
        body="manifest attached",
        attachment_ids=[attachment.pk],
    )
    return attachment


def _attachment_downloaded(w: World) -> None:
    attachment = _sent_attachment(w)
    _, pieces, _ = attachments.open_download(user=w.gz_officer, attachment_id=attachment.pk)
    b"".join(pieces)


def _attachment_damaged(w: World) -> None:
    attachment = _sent_attachment(w)
    blob = w.attachment_store() / attachment.storage_name
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0x01
    blob.write_bytes(bytes(data))
    with pytest.raises(Exception, match="integrity"):  # a small file is checked before serving
        attachments.open_download(user=w.gz_officer, attachment_id=attachment.pk)


def _bookkeeping_pruned(w: World) -> None:
    from liaison.models import UserSession
    from liaison.services import jobs

    long_ago = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    UserSession.objects.create(
        user=w.uk_officer,
        session_key="pruned-session",
        created_at=long_ago,
        last_seen_at=long_ago,
        ended_at=long_ago,
    )
    jobs.prune_bookkeeping()


def _attachment_purged(w: World) -> None:
    w.upload(w.uk_officer)
    attachments.purge_unsent(older_than=dt.timedelta(0))


def _dataset(w: World, name: str) -> int:
    w.attachment_store()
    w.room  # noqa: B018 - the exercise's data is sealed under its first room's key
    filename, kind = SAMPLE_FILES[name]
    return exchange.upload_dataset(
        uploader=w.uk_officer,
        exercise_id=w.exercise.pk,
        kind=kind,
        filename=filename,
        chunks=[sample(filename)],
    ).dataset.pk


def _dataset_uploaded(w: World) -> None:
    _dataset(w, "prohibited")


def _dataset_refused(w: World) -> None:
    w.attachment_store()
    w.room  # noqa: B018
    with pytest.raises(Exception, match="neither CSV nor XLSX"):
        exchange.upload_dataset(
            uploader=w.uk_officer,
            exercise_id=w.exercise.pk,
            kind="prohibited_list",
            filename="list.exe",
            chunks=[b"MZ\x00\x00" + os.urandom(500)],
        )


def _comparison(w: World) -> exchange.ComparisonRun:
    return exchange.run_mirror_comparison(
        actor=w.gz_officer,
        exercise_id=w.exercise.pk,
        exports=_dataset(w, "exports"),
        imports=_dataset(w, "imports"),
    )


def _comparison_run(w: World) -> None:
    _comparison(w)


def _comparison_viewed(w: World) -> None:
    run = _comparison(w)
    exchange.read_comparison(user=w.auditor, comparison_id=run.comparison.pk)


def _comparison_exported(w: World) -> None:
    run = _comparison(w)
    exchange.export_comparison(
        user=w.uk_officer, comparison_id=run.comparison.pk, file_format="csv"
    )


def _comparison_handed_over(w: World) -> None:
    run = _comparison(w)
    exchange.hand_over_comparison(
        user=w.uk_officer, comparison_id=run.comparison.pk, recipient="Environment Agency"
    )


def _report_exported(w: World) -> None:
    exchange_reports.post_report(
        sender=w.gz_officer,
        room_id=w.room.pk,
        client_id="seizure",
        fields={
            "date": "2026-11-12",
            "place": "Nansha",
            "commodity": "Plastic waste",
            "quantity": 20,
            "unit": "t",
        },
    )
    exchange_reports.export_reports(user=w.uk_officer, exercise_id=w.exercise.pk)


def _kek_added(w: World) -> None:
    w.own_keyring()
    keys.add_kek(actor=None, actor_label="manage.py keys")


def _kek_rotated(w: World) -> None:
    w.own_keyring()
    say(w.uk_officer, w.room, "sealed under the first KEK")
    keys.add_kek(actor=None)
    keys.rotate_kek(actor=None)


def _kek_retired(w: World) -> None:
    _kek_rotated(w)
    keys.retire_kek(actor=None, kek_id="first")


def _room_rotated(w: World) -> None:
    keys.rotate_room(actor=w.admin, room=w.room)


def _legal_hold_set(w: World) -> None:
    from liaison.services import retention

    retention.set_legal_hold(actor=w.admin, exercise=w.exercise, reason="Court order 2026/114")


def _legal_hold_lifted(w: World) -> None:
    from liaison.services import retention

    retention.set_legal_hold(actor=w.admin, exercise=w.exercise, reason="Court order 2026/114")
    retention.lift_legal_hold(actor=w.admin, exercise=w.exercise)


def _export_waived(w: World) -> None:
    from liaison.services import retention

    exercises.close_exercise(actor=w.admin, exercise=w.exercise)
    retention.waive_export(actor=w.admin, exercise=w.exercise, reason="Agreed with both agencies")


def _content_deleted(w: World) -> None:
    from liaison.services import retention

    w.upload(w.uk_officer)
    exercises.close_exercise(actor=w.admin, exercise=w.exercise)
    keys.shred_exercise(actor=w.admin, exercise=w.exercise, waive_export="agreed")
    retention.delete_content(exercise_id=w.exercise.pk)


def _shredded(w: World) -> None:
    say(w.uk_officer, w.room, "to be destroyed")
    exercises.close_exercise(actor=w.admin, exercise=w.exercise)
    keys.shred_exercise(
        actor=w.admin, exercise=w.exercise, waive_export="no export is needed in this test"
    )


def _audit_viewed(w: World) -> None:
    w.signed_in(w.auditor).get("/audit/")


def _audit_searched(w: World) -> None:
    w.signed_in(w.auditor).get(f"/audit/exercises/{w.exercise.pk}/search/", {"q": "MSCU"})


def _audit_verified(w: World) -> None:
    w.signed_in(w.auditor).post("/audit/verify/")


def _export_store(w: World) -> None:
    w.settings.STORAGES = {
        **w.settings.STORAGES,
        "exports": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(w.tmp_path / "exports")},
        },
    }


def _audit_export_requested(w: World) -> None:
    _export_store(w)
    w.signed_in(w.auditor).post(f"/audit/exercises/{w.exercise.pk}/export/")


def _audit_exported(w: World) -> None:
    from liaison.services import jobs

    _audit_export_requested(w)
    jobs.Worker(batch=True, schedule=False).run()


def _audit_export_downloaded(w: World) -> None:
    from liaison.models import AuditExport

    _audit_exported(w)
    export = AuditExport.objects.get()
    response = w.signed_in(w.auditor).get(f"/audit/exports/{export.pk}/download")
    b"".join(response.streaming_content)


def _backup_created(w: World) -> None:
    w.attachment_store()
    recipient = backups.parse_recipient(backups.new_identity()[1])
    backups.backup_to_file(path=w.tmp_path / "liaison.backup", recipient=recipient)


CASES: dict[str, Callable[[World], None]] = {
    "auth.login": _login,
    "auth.login_failed": _login_failed,
    "auth.logout": _logout,
    "auth.locked_out": _locked_out,
    "auth.otp_failed": _otp_failed,
    "auth.2fa_enrolled": _enrolled,
    "auth.recovery_code_used": _recovery_code_used,
    "auth.recovery_codes_regenerated": _recovery_codes_regenerated,
    "auth.2fa_reset": _twofactor_reset,
    "auth.password_changed": _password_changed,
    "account.profile_changed": _profile_changed,
    "account.language_changed": _language_changed,
    "auth.session_expired": _session_expired,
    "auth.session_revoked": _session_revoked,
    "auth.logout_everywhere": _logout_everywhere,
    "access.denied": _access_denied,
    "exercise.created": _exercise_created,
    "exercise.updated": _exercise_updated,
    "exercise.activated": _exercise_activated,
    "exercise.closed": _exercise_closed,
    "exercise.archived": _exercise_archived,
    "room.created": _room_created,
    "invitation.created": _invitation_created,
    "invitation.revoked": _invitation_revoked,
    "invitation.accepted": _invitation_accepted,
    "invitation.refused": _invitation_refused,
    "membership.added": _membership_added,
    "membership.removed": _membership_removed,
    "membership.role_changed": _membership_role_changed,
    "message.edited": _message_edited,
    "message.deleted": _message_deleted,
    "message.integrity_failed": _message_integrity_failed,
    "message.acknowledged": _message_acknowledged,
    "notification.emailed": _notification_emailed,
    "messages.searched": _messages_searched,
    "exercise.markings_changed": _markings_changed,
    "attachment.uploaded": _attachment_uploaded,
    "attachment.refused": _attachment_refused,
    "attachment.downloaded": _attachment_downloaded,
    "attachment.damaged": _attachment_damaged,
    "attachment.purged": _attachment_purged,
    "bookkeeping.pruned": _bookkeeping_pruned,
    "dataset.uploaded": _dataset_uploaded,
    "dataset.refused": _dataset_refused,
    "comparison.run": _comparison_run,
    "comparison.viewed": _comparison_viewed,
    "comparison.exported": _comparison_exported,
    "comparison.handed_over": _comparison_handed_over,
    "report.exported": _report_exported,
    "keys.kek_added": _kek_added,
    "keys.kek_rotated": _kek_rotated,
    "keys.kek_retired": _kek_retired,
    "keys.room_rotated": _room_rotated,
    "keys.shredded": _shredded,
    "exercise.legal_hold_set": _legal_hold_set,
    "exercise.legal_hold_lifted": _legal_hold_lifted,
    "exercise.export_waived": _export_waived,
    "exercise.content_deleted": _content_deleted,
    "audit.viewed": _audit_viewed,
    "audit.searched": _audit_searched,
    "audit.verified": _audit_verified,
    "audit.exported": _audit_exported,
    "audit.export_requested": _audit_export_requested,
    "audit.export_downloaded": _audit_export_downloaded,
    "backup.created": _backup_created,
}

# Actions whose name is built at run time, so the source scan below cannot see them.
COMPUTED_ACTIONS = {"exercise.activated", "exercise.closed", "exercise.archived", "access.denied"}


@pytest.fixture
def world(request: pytest.FixtureRequest, tmp_path: Path) -> World:
    return World(request, tmp_path)


@pytest.mark.parametrize("action", list(CASES))
def test_the_action_produces_its_audit_event(world: World, action: str) -> None:
    before = head_seq()

    CASES[action](world)

    new = list(AuditEvent.objects.filter(seq__gt=before, action=action))
    assert new, (
        f"no {action} event; got {list(AuditEvent.objects.filter(seq__gt=before).values_list('action', flat=True))}"
    )
    report = audit_verify.verify(checkpoints=False)
    assert report.ok, report.summary()
    # Events carry metadata only: never the text of a message.
    for event in new:
        assert "MSCU1234567" not in str(event.details)


def test_every_action_recorded_in_the_code_has_a_case() -> None:
    source = Path(django_settings.BASE_DIR) / "liaison"
    pattern = re.compile(r'\baction="([a-z0-9_]+\.[a-z0-9_.]+)"')
    found = {
        name
        for path in source.rglob("*.py")
        for name in pattern.findall(path.read_text(encoding="utf-8"))
    }
    assert found, "the scan found no actions at all"
    assert found - set(CASES) == set()
    assert set(CASES) >= COMPUTED_ACTIONS
    # And no case is left over for an action the code no longer records.
    assert set(CASES) - found <= COMPUTED_ACTIONS


def test_auditing_services_refuse_everyone_but_auditors(uk_officer: User, admin: User) -> None:
    for user in (uk_officer, admin):
        with pytest.raises(AccessDenied):
            workspace.list_exercises(auditor=user)


def test_the_cases_cover_the_actions_the_issue_names() -> None:
    named = {
        "auth.login",
        "auth.login_failed",
        "auth.locked_out",
        "auth.logout",
        "auth.2fa_enrolled",
        "exercise.created",
        "exercise.updated",
        "room.created",
        "invitation.created",
        "invitation.revoked",
        "invitation.accepted",
        "invitation.refused",
        "membership.added",
        "membership.removed",
        "membership.role_changed",
        "message.edited",
        "message.deleted",
        "attachment.uploaded",
        "attachment.downloaded",
        "keys.kek_rotated",
        "keys.shredded",
        "audit.viewed",
        "audit.searched",
        "audit.exported",
        "access.denied",
    }
    assert named <= set(CASES)


def test_a_sent_message_is_recorded_by_its_room_chain_not_by_an_audit_event(
    uk_officer: User, room: Room
) -> None:
    """Sending is the one action the issue named that has no audit event: the message's
    tamper-evident record is its link in the room's chain, written with it."""
    before = head_seq()

    (message,) = say(uk_officer, room, "Container MSCU1234567 leaves tonight.")

    assert not AuditEvent.objects.filter(seq__gt=before).exists()
    room.refresh_from_db()
    assert (room.last_seq, room.chain_head) == (message.seq, message.chain_hash)
    report = audit_verify.verify(checkpoints=False)
    assert report.ok, report.summary()
    assert report.messages_checked == 1
    Message.objects.filter(pk=message.pk).update(ciphertext=b"rewritten")
    altered = audit_verify.verify(checkpoints=False)
    assert [(b.chain, b.seq, b.reason) for b in altered.breaks] == [("room", 1, "altered")]
