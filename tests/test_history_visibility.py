"""History visibility for late joiners, per exercise (like Matrix's): in a ``joined`` exercise a
member reads only what was written from their joining, on every read path (HTTP history and
sync, the socket's history, sync and live updates, attachments and their previews, search,
unread counts, seizure reports); in a ``shared`` one they read everything. Chosen at creation
and never changed."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.core.management import call_command
from django.test import Client

from liaison import selectors
from liaison.errors import Invalid
from liaison.models import (
    Agency,
    AuditEvent,
    Exercise,
    GroupRole,
    HistoryVisibility,
    Membership,
    Message,
    Room,
    User,
)
from liaison.services import attachments, messaging, reading, search
from liaison.services import exercises as exercise_service
from tests.conftest import sign_in
from tests.factories import MembershipFactory, UserFactory
from tests.test_realtime_consumer import joined

EARLY = "MSCU1234567 was loaded before Lin joined"
LATE = "MSCU1234567 sails after Lin joined"


def send(user: User, room: Room, body: str, **kw: Any) -> Message:
    kw.setdefault("client_id", f"c-{uuid.uuid4().hex[:12]}")
    return messaging.send_message(sender=user, room_id=room.pk, body=body, **kw).message


def send_file(user: User, room: Room, body: str) -> tuple[Message, int]:
    attachment = attachments.upload_attachment(
        uploader=user,
        room_id=room.pk,
        filename="manifest.pdf",
        declared_type="application/pdf",
        chunks=[b"%PDF-1.7\n" + os.urandom(3000)],
    )
    return send(user, room, body, attachment_ids=[attachment.pk]), attachment.pk


def join_late(exercise: Exercise, agency: Agency) -> User:
    user = UserFactory(email="lin@gz.example", display_name="Lin Late", agency=agency)
    MembershipFactory(exercise=exercise, user=user, role=GroupRole.MEMBER)
    return user


def bodies(page: Any) -> list[str]:
    return [message["body"] for message in page.messages]


@pytest.fixture
def joined_exercise(exercise: Exercise) -> Exercise:
    Exercise.objects.filter(pk=exercise.pk).update(history_visibility=HistoryVisibility.JOINED)
    exercise.refresh_from_db()
    return exercise


@pytest.fixture
def story(
    joined_exercise: Exercise,
    room: Room,
    uk_officer: User,
    gz_officer: User,
    gacc: Agency,
    store: Path,
) -> dict[str, Any]:
    """Olivia writes (and shares a file) with Li Wei there, before Lin joins; then once more
    after."""
    early = send(uk_officer, room, EARLY)
    with_file, attachment_id = send_file(uk_officer, room, "the manifest, before")
    lin = join_late(joined_exercise, gacc)
    late = send(uk_officer, room, LATE)
    return {
        "early": early,
        "with_file": with_file,
        "attachment_id": attachment_id,
        "lin": lin,
        "late": late,
    }


# --- HTTP and the reading services --------------------------------------------------------------


@pytest.mark.django_db
def test_a_late_joiner_reads_history_only_from_their_joining(
    story: dict[str, Any], room: Room, uk_officer: User, auditor: User
) -> None:
    lin = story["lin"]
    page = reading.read_history(user=lin, room_id=room.pk, via="api")
    assert bodies(page) == [LATE]
    assert page.has_more is False
    assert bodies(reading.read_since(user=lin, room_id=room.pk, after_seq=0, via="api")) == [LATE]
    # Those who were there, and auditors, read everything.
    assert len(reading.read_history(user=uk_officer, room_id=room.pk, via="api").messages) == 3
    assert len(reading.read_history(user=auditor, room_id=room.pk, via="api").messages) == 3


@pytest.mark.django_db
def test_the_history_api_hides_earlier_messages_from_a_late_joiner(
    story: dict[str, Any], room: Room
) -> None:
    client = sign_in(Client(), story["lin"])
    for query in ("", "?after=0", "?before=99"):
        response = client.get(f"/api/v1/rooms/{room.pk}/messages{query}")
        assert response.status_code == 200
        assert [m["body"] for m in response.json()["messages"]] == [LATE], query


@pytest.mark.django_db
def test_a_late_joiner_cannot_download_or_preview_an_earlier_file(
    story: dict[str, Any], gz_officer: User
) -> None:
    url = f"/api/v1/attachments/{story['attachment_id']}"
    assert sign_in(Client(), story["lin"]).get(url).status_code == 404
    assert sign_in(Client(), story["lin"]).get(url + "/thumbnail").status_code == 404
    # gz_officer joined before the file was sent: theirs to read.
    response = sign_in(Client(), gz_officer).get(url)
    assert response.status_code == 200
    assert AuditEvent.objects.filter(action="access.denied", target_type="attachment").exists()


@pytest.mark.django_db
def test_search_finds_only_what_a_late_joiner_may_read(story: dict[str, Any]) -> None:
    found = search.search_messages(
        user=story["lin"], filters=search.SearchFilters(query="MSCU1234567")
    )
    assert [r["body"] for r in found.results] == [LATE]


@pytest.mark.django_db
def test_unread_counts_leave_out_what_a_late_joiner_cannot_read(
    story: dict[str, Any], room: Room
) -> None:
    assert selectors.unread_counts(user=story["lin"]) == {room.pk: 1}
    assert selectors.attention_counts(user=story["lin"])[room.pk]["unread"] == 1


@pytest.mark.django_db
def test_a_reply_to_an_earlier_message_quotes_nothing_of_it_to_a_late_joiner(
    story: dict[str, Any],
    room: Room,
    uk_officer: User,
    captured_events: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    from liaison import events

    with django_capture_on_commit_callbacks(execute=True):
        reply = send(uk_officer, room, "see above", reply_to=story["early"].seq)

    (lins,) = reading.read_since(
        user=story["lin"], room_id=room.pk, after_seq=story["late"].seq, via="api"
    ).messages
    assert lins["reply"] == {
        "seq": story["early"].seq,
        "sender": None,
        "excerpt": None,
        "deleted": False,
        "hidden": True,
    }
    (olivias,) = reading.read_since(
        user=uk_officer, room_id=room.pk, after_seq=story["late"].seq, via="api"
    ).messages
    assert olivias["reply"]["excerpt"] == EARLY
    # The room's one broadcast frame goes to Lin too: it quotes nothing either.
    (new,) = [
        e
        for e in captured_events.to_group(events.room_group(room.pk))
        if e["type"] == events.ROOM_MESSAGE_NEW
    ]
    assert events.frame_of(new)["message"]["seq"] == reply.seq
    assert events.frame_of(new)["message"]["reply"]["excerpt"] is None


@pytest.mark.django_db
def test_the_seizure_reports_export_leaves_out_earlier_reports_for_a_late_joiner(
    joined_exercise: Exercise, room: Room, gz_officer: User, uk_officer: User, gacc: Agency
) -> None:
    from liaison.services import reports

    def report(client_id: str, place: str) -> None:
        reports.post_report(
            sender=gz_officer,
            room_id=room.pk,
            client_id=client_id,
            fields={
                "date": "2026-11-12",
                "place": place,
                "commodity": "Plastic waste",
                "quantity": 20,
                "unit": "t",
            },
        )

    report("early-report", "Nansha north quay")
    lin = join_late(joined_exercise, gacc)
    report("late-report", "Nansha south quay")

    lins = reports.export_reports(user=lin, exercise_id=joined_exercise.pk).data.decode()
    olivias = reports.export_reports(user=uk_officer, exercise_id=joined_exercise.pk).data.decode()
    assert "south quay" in lins
    assert "north quay" not in lins
    assert "north quay" in olivias
    assert "south quay" in olivias


@pytest.mark.django_db
def test_in_a_shared_exercise_a_late_joiner_reads_everything(
    exercise: Exercise, room: Room, uk_officer: User, gacc: Agency, store: Path
) -> None:
    assert exercise.history_visibility == HistoryVisibility.SHARED
    send(uk_officer, room, EARLY)
    _, attachment_id = send_file(uk_officer, room, "the manifest, before")
    lin = join_late(exercise, gacc)

    assert bodies(reading.read_history(user=lin, room_id=room.pk, via="api"))[0] == EARLY
    assert sign_in(Client(), lin).get(f"/api/v1/attachments/{attachment_id}").status_code == 200
    found = search.search_messages(user=lin, filters=search.SearchFilters(query="MSCU1234567"))
    assert [r["body"] for r in found.results] == [EARLY]


@pytest.mark.django_db
def test_a_member_removed_and_added_again_reads_from_the_new_joining(
    story: dict[str, Any], joined_exercise: Exercise, room: Room, admin: User, uk_officer: User
) -> None:
    lin = story["lin"]
    Membership.objects.filter(user=lin).update(removed_at=story["late"].created_at)
    between = send(uk_officer, room, "while Lin was away")
    MembershipFactory(exercise=joined_exercise, user=lin)

    assert bodies(reading.read_history(user=lin, room_id=room.pk, via="api")) == []
    assert between.seq == 4


# --- the room socket ----------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
async def test_the_socket_serves_a_late_joiner_only_later_messages_and_no_update_of_earlier_ones(
    ws_headers: Any, joined_exercise: Exercise, room: Room, uk_officer: User, gacc: Agency
) -> None:
    early = await database_sync_to_async(send)(uk_officer, room, EARLY)
    lin = await database_sync_to_async(join_late)(joined_exercise, gacc)
    late = await database_sync_to_async(send)(uk_officer, room, LATE)
    socket = await joined(ws_headers, lin, room)
    olivia = await joined(ws_headers, uk_officer, room)
    await socket.expect("presence")

    await socket.send({"type": "sync", "after_seq": 0})
    batch = await socket.expect("sync.batch")
    assert [m["seq"] for m in batch["messages"]] == [late.seq]
    assert (await socket.expect("sync.done"))["last_seq"] == late.seq
    await socket.send({"type": "history"})
    assert [m["seq"] for m in (await socket.expect("history.batch"))["messages"]] == [late.seq]

    # Olivia edits the early message (Lin must not see it) and then the late one (Lin may).
    await database_sync_to_async(messaging.edit_message)(
        user=uk_officer, room_id=room.pk, seq=early.seq, body="edited before"
    )
    await database_sync_to_async(messaging.edit_message)(
        user=uk_officer, room_id=room.pk, seq=late.seq, body="edited after"
    )
    updated = await socket.expect("message.updated")
    assert (updated["message"]["seq"], updated["message"]["body"]) == (late.seq, "edited after")
    seen = [(await olivia.expect("message.updated"))["message"]["seq"] for _ in range(2)]
    assert seen == [early.seq, late.seq]
    await socket.close()
    await olivia.close()


# --- chosen at creation -------------------------------------------------------------------------


@pytest.mark.django_db
def test_history_visibility_is_chosen_at_creation_and_audited(admin: User, hmrc: Agency) -> None:
    import datetime as dt

    start = dt.datetime(2030, 7, 1, tzinfo=dt.UTC)
    exercise = exercise_service.create_exercise(
        actor=admin,
        code="CFE-JOINED",
        title="Late joiners read from their joining",
        agencies=[hmrc],
        starts_at=start,
        ends_at=start + dt.timedelta(days=30),
        history_visibility="joined",
    )
    assert exercise.history_visibility == HistoryVisibility.JOINED
    event = AuditEvent.objects.get(action="exercise.created", exercise=exercise)
    assert event.details["history_visibility"] == "joined"
    with pytest.raises(Invalid, match="History visibility must be shared or joined"):
        exercise_service.create_exercise(
            actor=admin,
            code="CFE-BAD",
            title="Bad",
            agencies=[hmrc],
            starts_at=start,
            ends_at=start + dt.timedelta(days=30),
            history_visibility="world",
        )


@pytest.mark.django_db
def test_the_api_takes_it_at_creation_and_refuses_to_change_it(admin: User, hmrc: Agency) -> None:
    client = sign_in(Client(), admin)
    created = client.post(
        "/api/v1/exercises",
        data={
            "code": "CFE-API-JOINED",
            "title": "From the API",
            "agencies": ["hmrc"],
            "starts_at": "2030-07-01T08:00:00Z",
            "ends_at": "2030-07-31T18:00:00Z",
            "history_visibility": "joined",
        },
        content_type="application/json",
    )
    assert created.status_code == 201, created.content
    body = created.json()["exercise"]
    assert body["history_visibility"] == "joined"
    changed = client.patch(
        f"/api/v1/exercises/{body['id']}",
        data={"history_visibility": "shared"},
        content_type="application/json",
    )
    assert changed.status_code == 400
    assert changed.json()["error"]["field"] == "history_visibility"
    assert Exercise.objects.get(pk=body["id"]).history_visibility == "joined"


@pytest.mark.django_db
def test_the_creation_form_and_the_command_offer_it(admin: User, hmrc: Agency, capsys: Any) -> None:
    client = sign_in(Client(), admin)
    page = client.get("/manage/exercises/new/")
    assert b'name="history_visibility"' in page.content
    response = client.post(
        "/manage/exercises/new/",
        data={
            "code": "CFE-FORM-JOINED",
            "title": "From the form",
            "agencies": [hmrc.pk],
            "starts_at": "2030-07-01T08:00",
            "ends_at": "2030-07-31T18:00",
            "retention_days": 365,
            "history_visibility": "joined",
        },
    )
    assert response.status_code == 302, response.content
    assert Exercise.objects.get(code="CFE-FORM-JOINED").history_visibility == "joined"
    edit = client.get(f"/manage/exercises/{Exercise.objects.get(code='CFE-FORM-JOINED').pk}/edit/")
    assert b'name="history_visibility"' not in edit.content

    call_command(
        "exercise",
        "create",
        "--code",
        "CFE-CLI-JOINED",
        "--title",
        "From the command",
        "--starts",
        "2030-07-01T08:00:00Z",
        "--ends",
        "2030-07-31T18:00:00Z",
        "--agency",
        "hmrc",
        "--history",
        "joined",
        "--actor",
        admin.email,
    )
    assert Exercise.objects.get(code="CFE-CLI-JOINED").history_visibility == "joined"
