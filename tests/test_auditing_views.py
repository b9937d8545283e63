"""The auditors' workspace: everything readable, nothing writable, every page audited."""

from __future__ import annotations

import datetime as dt
import io
import json
import re
import zipfile
from pathlib import Path
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client
from django.utils import timezone

from config.asgi import application
from liaison import audit
from liaison.audit import workspace
from liaison.audit.offline_verifier import load_public_key, verify_export
from liaison.errors import PermissionDenied
from liaison.models import AuditEvent, ExerciseStatus, Membership, Message, Room, User
from liaison.services import messaging
from tests.audit_helpers import (
    head_seq,
    record_events,
    say,
    triggers_lifted,
)
from tests.factories import ExerciseFactory, RoomFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def auditor_client(client: Client, auditor: User, login_as: Any) -> Client:
    return login_as(client, auditor)


@pytest.fixture
def conversation(uk_officer: User, gz_officer: User, uk_coordinator: User, room: Room) -> Room:
    say(uk_officer, room, "Container MSCU1234567 leaves Felixstowe tonight.")
    say(gz_officer, room, "南沙海关已收到，将于周五查验。")
    say(uk_officer, room, "Weight declared: 21,400 kg")
    messaging.edit_message(user=uk_officer, room_id=room.pk, seq=3, body="Weight: 21,460 kg")
    say(gz_officer, room, "Wrong room, sorry")
    messaging.delete_message(user=uk_coordinator, room_id=room.pk, seq=4)
    return room


def audit_pages(room: Room) -> list[tuple[str, str, dict[str, str]]]:
    """(method, url, data) for every workspace page."""
    exercise_id = room.exercise_id
    return [
        ("get", "/audit/", {}),
        ("get", "/audit/trail/", {}),
        ("get", f"/audit/exercises/{exercise_id}/", {}),
        ("get", f"/audit/rooms/{room.pk}/", {}),
        ("get", f"/audit/exercises/{exercise_id}/search/", {"q": "container"}),
        ("get", "/audit/verify/", {}),
        ("post", "/audit/verify/", {}),
        ("post", f"/audit/exercises/{exercise_id}/export/", {}),
        ("get", "/audit/exports/", {}),
    ]


# --- who may enter -----------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["uk_officer", "uk_coordinator", "gz_observer", "admin"])
def test_non_auditors_get_404_on_every_audit_page_and_the_attempt_is_audited(
    request: pytest.FixtureRequest, client: Client, login_as: Any, room: Room, who: str
) -> None:
    user = request.getfixturevalue(who)
    login_as(client, user)
    for method, url, data in audit_pages(room):
        response = getattr(client, method)(url, data)
        assert response.status_code == 404, (who, url)
        assert b"Not found" in response.content
    denied = AuditEvent.objects.filter(action="access.denied", actor=user)
    assert denied.count() == len(audit_pages(room))
    assert not AuditEvent.objects.filter(action__startswith="audit.").exists()


def test_anonymous_visitors_are_sent_to_sign_in(client: Client) -> None:
    response = client.get("/audit/")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


# --- exercises and trail ---------------------------------------------------------------------------


def test_the_auditor_sees_every_exercise_in_every_state(
    auditor_client: Client, admin: User, room: Room
) -> None:
    for status in ExerciseStatus.values:
        ExerciseFactory(code=f"CFE-STATE-{status.upper()}", created_by=admin, status=status)

    response = auditor_client.get("/audit/")

    assert response.status_code == 200
    for status in ExerciseStatus.values:
        assert f"CFE-STATE-{status.upper()}".encode() in response.content
    assert b"CFE-TEST-WASTE" in response.content


def test_the_trail_filters_by_exercise_actor_action_and_date(
    auditor_client: Client, conversation: Room, uk_officer: User
) -> None:
    audit.record(actor=None, action="test.elsewhere")
    # Olivia's events in the exercise: her edit (in the conversation), deleting her own first
    # message, and one whose action the filter leaves out. Sending is not an audit event.
    messaging.delete_message(user=uk_officer, room_id=conversation.pk, seq=1)
    audit.record(actor=uk_officer, action="test.same_actor", exercise=conversation.exercise)
    today = timezone.now().date().isoformat()

    response = auditor_client.get(
        "/audit/trail/",
        {
            "exercise": "CFE-TEST-WASTE",
            "actor": "olivia@",
            "action": "message.",
            "from": today,
            "to": today,
        },
    )

    assert response.status_code == 200
    events = response.context["result"].events
    assert {e.action for e in events} == {"message.edited", "message.deleted"}
    assert {e.actor_id for e in events} == {uk_officer.pk}
    assert all(e.exercise_id == conversation.exercise_id for e in events)
    tomorrow = (timezone.now().date() + dt.timedelta(days=1)).isoformat()
    later = auditor_client.get("/audit/trail/", {"from": tomorrow})
    assert later.context["result"].events == []


def test_the_trail_pages_by_seq_newest_first(auditor_client: Client) -> None:
    base = head_seq()
    record_events(120)

    def seqs(high: int, low: int) -> list[int]:
        return list(range(base + high, base + low, -1))

    first = auditor_client.get("/audit/trail/", {"action": "test."}).context["result"]
    assert [e.seq for e in first.events] == seqs(120, 70)
    assert first.newer_than is None
    second = auditor_client.get(
        "/audit/trail/", {"action": "test.", "before": first.older_than}
    ).context["result"]
    assert [e.seq for e in second.events] == seqs(70, 20)
    third = auditor_client.get(
        "/audit/trail/", {"action": "test.", "before": second.older_than}
    ).context["result"]
    assert [e.seq for e in third.events] == seqs(20, 0)
    assert third.older_than is None
    back = auditor_client.get(
        "/audit/trail/", {"action": "test.", "after": third.newer_than}
    ).context["result"]
    assert [e.seq for e in back.events] == seqs(70, 20)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"from": "01/07/2026"}, "from must be a date"),
        ({"from": "2026-07-02", "to": "2026-07-01"}, "end date is before the start date"),
        ({"exercise": "CFE-NOPE"}, "no exercise"),
        ({"before": "minus-one"}, "before must be a whole number"),
    ],
)
def test_bad_trail_filters_are_named(
    auditor_client: Client, params: dict[str, str], message: str
) -> None:
    response = auditor_client.get("/audit/trail/", params)
    assert response.status_code == 400
    assert message in response.content.decode()


# --- transcripts and search ----------------------------------------------------------------------


def test_the_transcript_shows_edits_and_deletions_marked(
    auditor_client: Client, conversation: Room
) -> None:
    response = auditor_client.get(f"/audit/rooms/{conversation.pk}/")

    page = response.content.decode()
    assert response.status_code == 200
    assert "南沙海关已收到" in page
    assert "Weight declared: 21,400 kg" in page  # the original
    assert "Weight: 21,460 kg" in page  # the revision
    assert "audit-edited" in page
    assert "Wrong room, sorry" in page
    assert "audit-deleted" in page
    assert "james@ukbf.example" in page


def test_the_transcript_pages_through_a_long_room(
    auditor: User, uk_officer: User, room: Room
) -> None:
    say(uk_officer, room, *[f"line {n}" for n in range(1, 8)])

    first = workspace.room_transcript(auditor=auditor, room_id=room.pk, page_size=3)
    second = workspace.room_transcript(
        auditor=auditor, room_id=room.pk, after=first.next_after, page_size=3
    )
    last = workspace.room_transcript(auditor=auditor, room_id=room.pk, after=6, page_size=3)

    assert [e["seq"] for e in first.entries] == [1, 2, 3]
    assert [e["seq"] for e in second.entries] == [4, 5, 6]
    assert [e["seq"] for e in last.entries] == [7]
    assert last.next_after is None


def test_a_shredded_room_is_shown_as_destroyed(
    auditor_client: Client, conversation: Room, admin: User
) -> None:
    from liaison.services import exercises, keys

    exercises.close_exercise(actor=admin, exercise=conversation.exercise)
    keys.shred_exercise(
        actor=admin, exercise=conversation.exercise, waive_export="no export is needed in this test"
    )

    page = auditor_client.get(f"/audit/rooms/{conversation.pk}/").content.decode()

    assert "Content destroyed by retention policy." in page
    assert "Container MSCU1234567" not in page


def test_search_finds_text_in_originals_revisions_and_deleted_messages(
    auditor_client: Client, conversation: Room
) -> None:
    for query, seq, version in [
        ("mscu1234567", 1, "original"),
        ("21,460", 3, "revision 1"),
        ("WRONG ROOM", 4, "original"),
        ("周五", 2, "original"),
    ]:
        response = auditor_client.get(
            f"/audit/exercises/{conversation.exercise_id}/search/", {"q": query}
        )
        hits = response.context["result"].hits
        assert [(h["entry"]["seq"], h["version"]) for h in hits] == [(seq, version)], query


def test_search_records_a_digest_of_the_query_not_the_text(
    auditor_client: Client, conversation: Room, auditor: User
) -> None:
    auditor_client.get(f"/audit/exercises/{conversation.exercise_id}/search/", {"q": "MSCU"})

    event = AuditEvent.objects.get(action="audit.searched")
    assert event.actor_id == auditor.pk
    assert event.details["hits"] == 1
    assert event.details["query_length"] == 4
    assert "mscu" not in str(event.details).casefold()


def test_search_is_bounded(auditor: User, uk_officer: User, room: Room, lane_room: Room) -> None:
    say(uk_officer, room, *[f"seizure note {n}" for n in range(6)])
    say(uk_officer, lane_room, "seizure note lane")

    by_messages = workspace.search_messages(
        auditor=auditor, exercise_id=room.exercise_id, query="seizure", max_messages=4
    )
    by_results = workspace.search_messages(
        auditor=auditor, exercise_id=room.exercise_id, query="seizure", max_results=2
    )
    by_rooms = workspace.search_messages(
        auditor=auditor, exercise_id=room.exercise_id, query="seizure", max_rooms=1
    )

    assert (by_messages.messages_scanned, len(by_messages.hits)) == (4, 4)
    assert "4 messages" in by_messages.stopped
    assert len(by_results.hits) == 2
    assert "2 results" in by_results.stopped
    assert by_rooms.rooms_scanned == 1
    assert "first 1 rooms" in by_rooms.stopped


@pytest.mark.parametrize(("query", "problem"), [("a", "at least 2"), ("x" * 201, "at most 200")])
def test_a_bad_search_is_refused_with_a_reason(
    auditor_client: Client, room: Room, query: str, problem: str
) -> None:
    response = auditor_client.get(f"/audit/exercises/{room.exercise_id}/search/", {"q": query})
    assert response.status_code == 400
    assert problem in response.content.decode()


# --- verify and export -----------------------------------------------------------------------


def test_the_verify_button_shows_an_intact_chain(
    auditor_client: Client, conversation: Room
) -> None:
    response = auditor_client.post("/audit/verify/", {"exercise": conversation.exercise_id})

    assert response.status_code == 200
    assert response.context["report"].ok
    assert "Intact" in response.content.decode()
    event = AuditEvent.objects.get(action="audit.verified")
    assert event.details["ok"] is True
    assert event.exercise_id == conversation.exercise_id


def test_the_verify_button_names_the_first_broken_seq(auditor_client: Client) -> None:
    record_events(10)
    with triggers_lifted():
        AuditEvent.objects.filter(seq=6).update(action="covered.up")

    response = auditor_client.post("/audit/verify/")

    page = response.content.decode()
    assert "Broken" in page
    assert "altered" in page
    event = AuditEvent.objects.get(action="audit.verified")
    assert (event.details["ok"], event.details["broken_seq"]) == (False, 6)


def test_the_export_download_is_a_signed_zip_that_verifies(
    auditor_client: Client, conversation: Room, tmp_path: Path
) -> None:
    from liaison.audit.signing import public_key_b64
    from liaison.services import jobs

    asked = auditor_client.post(f"/audit/exercises/{conversation.exercise_id}/export/")
    assert asked.status_code == 302  # a job prepares it (tests/test_exports.py)
    jobs.Worker(batch=True, schedule=False).run()
    (link,) = re.findall(
        r"/audit/exports/\d+/download", auditor_client.get("/audit/exports/").content.decode()
    )
    response = auditor_client.get(link)

    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    assert "liaison-export-CFE-TEST-WASTE-" in response["Content-Disposition"]
    with zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content))) as archive:
        archive.extractall(tmp_path)
    (folder,) = list(tmp_path.glob("liaison-export-*"))
    check = verify_export(folder, load_public_key(public_key_b64()))
    assert check.ok, check.problems
    assert check.messages == 4
    event = AuditEvent.objects.get(action="audit.exported")
    assert event.details["via"] == "job"


def test_the_export_is_not_served_by_get(auditor_client: Client, room: Room) -> None:
    response = auditor_client.get(f"/audit/exercises/{room.exercise_id}/export/")
    assert response.status_code == 405
    assert not AuditEvent.objects.filter(action="audit.exported").exists()


# --- every page is audited; nothing inline ------------------------------------------------------


@pytest.mark.parametrize(
    ("index", "action", "page"),
    [
        (0, "audit.viewed", "exercises"),
        (1, "audit.viewed", "trail"),
        (2, "audit.viewed", "exercise"),
        (3, "audit.viewed", "transcript"),
        (4, "audit.searched", None),
        (5, "audit.viewed", "verify"),
        (6, "audit.verified", None),
        (7, "audit.export_requested", None),
        (8, "audit.viewed", "exports"),
    ],
)
def test_every_page_an_auditor_opens_is_audited(
    auditor_client: Client,
    auditor: User,
    conversation: Room,
    index: int,
    action: str,
    page: str | None,
) -> None:
    method, url, data = audit_pages(conversation)[index]
    before = AuditEvent.objects.count()

    response = getattr(auditor_client, method)(url, data, REMOTE_ADDR="192.0.2.44")

    # Asking for an export is answered with the way to the exports page, where it appears.
    assert response.status_code == (302 if action == "audit.export_requested" else 200)
    new = list(AuditEvent.objects.order_by("seq")[before:])
    assert [e.action for e in new] == [action]
    assert new[0].actor_id == auditor.pk
    assert new[0].ip == "192.0.2.44"
    if page is not None:
        assert new[0].details["page"] == page


def test_audit_pages_carry_no_inline_script_or_style(
    auditor_client: Client, conversation: Room
) -> None:
    for method, url, data in audit_pages(conversation)[:7]:
        content = getattr(auditor_client, method)(url, data).content.decode()
        # Scripts only from our static files (the page's menus), never inline code.
        for tag in re.findall(r"<script\b[^>]*>", content):
            assert re.search(r'\bsrc="/static/', tag), (url, tag)
        assert not re.search(r"<script\b[^>]*>\s*[^<\s]", content), url
        assert "style=" not in content, url
        assert "<style" not in content, url


# --- auditors never write -----------------------------------------------------------------------


def test_an_auditor_cannot_post_edit_or_delete_through_the_services(
    auditor: User, uk_officer: User, room: Room
) -> None:
    say(uk_officer, room, "hello")
    with pytest.raises(PermissionDenied, match="read-only"):
        messaging.send_message(sender=auditor, room_id=room.pk, client_id="a1", body="hi")
    with pytest.raises(PermissionDenied):
        messaging.edit_message(user=auditor, room_id=room.pk, seq=1, body="changed")
    with pytest.raises(PermissionDenied):
        messaging.delete_message(user=auditor, room_id=room.pk, seq=1)
    assert Message.objects.filter(room=room).count() == 1
    assert not Message.objects.filter(room=room, edited_at__isnull=False).exists()


def test_an_auditor_cannot_invite_provision_or_change_memberships(
    auditor: User, exercise: Any, hmrc: Any, uk_officer: User, outsider: User
) -> None:
    from liaison.services import exercises, invitations, memberships, rooms

    membership = Membership.objects.get(exercise=exercise, user=uk_officer)
    attempts = [
        lambda: invitations.create_invitation(
            actor=auditor, exercise=exercise, email="x@hmrc.example", agency=hmrc
        ),
        lambda: memberships.add_member(actor=auditor, exercise=exercise, user=outsider),
        lambda: memberships.remove_member(actor=auditor, membership=membership),
        lambda: memberships.change_role(actor=auditor, membership=membership, role="observer"),
        lambda: exercises.update_exercise(actor=auditor, exercise=exercise, title="Changed"),
        lambda: rooms.add_room(actor=auditor, exercise=exercise, name="side-room"),
        lambda: exercises.close_exercise(actor=auditor, exercise=exercise),
    ]
    for attempt in attempts:
        with pytest.raises(PermissionDenied):
            attempt()
    exercise.refresh_from_db()
    assert (exercise.title, exercise.status) == ("Solid waste CFE", ExerciseStatus.ACTIVE)
    assert Membership.objects.filter(exercise=exercise, removed_at__isnull=True).count() == 1
    assert not Room.objects.filter(name="side-room").exists()


@pytest.mark.django_db(transaction=True)
async def test_an_auditors_attempt_to_post_over_websocket_is_refused_and_audited(
    auditor: User, room: Room, ws_headers: Any
) -> None:
    headers = await database_sync_to_async(ws_headers)(auditor)
    communicator = WebsocketCommunicator(application, f"/ws/rooms/{room.pk}/", headers=headers)
    connected, _ = await communicator.connect()
    assert connected
    await communicator.send_json_to(
        {"type": "message.send", "client_id": "auditor-1", "body": "I should not be here"}
    )

    reply: dict[str, Any] = {}
    for _ in range(10):
        output = await communicator.receive_output(timeout=5)
        if output["type"] == "websocket.close":
            reply = {"closed": output.get("code")}
            break
        frame = json.loads(output.get("text") or "{}")
        if frame.get("type") == "error":
            reply = frame
            break
    await communicator.disconnect()

    assert reply.get("code") == "forbidden" or reply.get("closed") == 4403, reply

    def stored() -> tuple[int, list[dict[str, Any]]]:
        denied = AuditEvent.objects.filter(action="access.denied", actor=auditor)
        return Message.objects.filter(room=room).count(), [e.details for e in denied]

    messages, denials = await database_sync_to_async(stored)()
    assert messages == 0
    assert any(d.get("via") == "ws" for d in denials), denials


def test_auditors_read_rooms_of_any_exercise_without_belonging(
    auditor_client: Client, admin: User
) -> None:
    archived = ExerciseFactory(code="CFE-OLD", created_by=admin, status=ExerciseStatus.ARCHIVED)
    old_room = RoomFactory(exercise=archived, name="general")
    response = auditor_client.get(f"/audit/rooms/{old_room.pk}/")
    assert response.status_code == 200
    assert auditor_client.get("/audit/rooms/999999/").status_code == 404
