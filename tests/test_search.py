"""An officer's search of their own rooms: decrypted on the server, bounded and paged, audited,
and never outside the rooms the officer reads now."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

import pytest
from django.test import Client

from liaison.errors import AccessDenied, Invalid
from liaison.models import AuditEvent, Room, User
from liaison.services import search
from liaison.services.messaging import delete_message, edit_message, send_message
from tests.conftest import sign_in
from tests.factories import RoomFactory

pytestmark = pytest.mark.django_db


def send(user: User, room: Room, body: str, **kw: Any) -> int:
    kw.setdefault("client_id", f"c-{uuid.uuid4().hex[:12]}")
    return send_message(sender=user, room_id=room.pk, body=body, **kw).seq


def find(user: User, query: str, **kw: Any) -> search.SearchPage:
    return search.search_messages(user=user, filters=search.SearchFilters(query=query, **kw))


def test_an_officer_finds_a_container_however_it_was_written_newest_first(
    uk_officer: User, gz_officer: User, room: Room, lane_room: Room
) -> None:
    send(uk_officer, room, "Hold MSKU 441770-2 at Nansha please.")
    send(gz_officer, lane_room, "Nothing about containers here.")
    send(gz_officer, lane_room, "MSKU4417702 is on the vessel.")
    page = find(gz_officer, "msku4417702")
    assert [(r["room"], r["seq"]) for r in page.results] == [(lane_room.pk, 2), (room.pk, 1)]
    first = page.results[0]
    assert first["body"] == "MSKU4417702 is on the vessel."
    assert first["sender"]["display_name"] == "Li Wei"
    assert first["url"] == f"/rooms/{lane_room.pk}/#msg-2"
    assert page.next is None


def test_every_word_must_match_and_the_current_text_counts_not_deleted_ones(
    uk_officer: User, gz_officer: User, room: Room
) -> None:
    send(uk_officer, room, "plastic bales at Felixstowe")
    send(uk_officer, room, "bales of paper")
    send(uk_officer, room, "plastic bales, second lot")
    edit_message(user=uk_officer, room_id=room.pk, seq=2, body="plastic bales after all")
    delete_message(user=uk_officer, room_id=room.pk, seq=3)
    page = find(gz_officer, "Plastic BALES")
    assert [r["seq"] for r in page.results] == [2, 1]
    assert page.results[0]["body"] == "plastic bales after all"


def test_search_never_returns_a_message_from_a_room_the_officer_is_not_in(
    uk_officer: User, outsider: User, other_exercise: Any, room: Room
) -> None:
    other_room = RoomFactory(exercise=other_exercise, name="general", title="General")
    send(uk_officer, room, "MSKU4417702 seized")
    send(outsider, other_room, "MSKU4417702 elsewhere")
    assert [r["room"] for r in find(outsider, "MSKU4417702").results] == [other_room.pk]
    assert [r["room"] for r in find(uk_officer, "MSKU4417702").results] == [room.pk]
    with pytest.raises(AccessDenied):
        find(outsider, "MSKU4417702", room_id=room.pk)


def test_a_removed_member_finds_nothing_of_the_exercise(
    uk_officer: User, gz_officer: User, room: Room
) -> None:
    send(uk_officer, room, "MSKU4417702 seized")
    gz_officer.memberships.update(removed_at=dt.datetime.now(dt.UTC))
    assert find(gz_officer, "MSKU4417702").results == []


def test_auditors_and_admins_have_nothing_here(
    uk_officer: User, auditor: User, admin: User, room: Room
) -> None:
    send(uk_officer, room, "MSKU4417702 seized")
    assert find(auditor, "MSKU4417702").results == []
    assert find(admin, "MSKU4417702").results == []


def test_a_search_is_bounded_and_paged_with_a_cursor(
    uk_officer: User, gz_officer: User, room: Room, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(search, "PAGE_SIZE", 2)
    monkeypatch.setattr(search, "SCAN_LIMIT", 5)
    monkeypatch.setattr(search, "BATCH", 3)
    for index in range(1, 11):
        send(uk_officer, room, f"seal {index}" if index % 3 == 0 else f"note {index}")
    first = find(gz_officer, "seal")
    assert [r["body"] for r in first.results] == ["seal 9", "seal 6"]
    assert first.scanned == 5
    second = find(gz_officer, "seal", before=search.parse_cursor(first.next))
    # At most five messages are opened per request: seq 5..1 hold "seal 3" only.
    assert [r["body"] for r in second.results] == ["seal 3"]
    assert second.scanned == 5
    assert second.next is None


def test_a_scan_that_stops_at_its_bound_says_where_to_go_on(
    uk_officer: User, gz_officer: User, room: Room, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(search, "SCAN_LIMIT", 3)
    for index in range(6):
        send(uk_officer, room, "seal" if index == 0 else f"other {index}")
    first = find(gz_officer, "seal")
    assert first.results == []
    assert first.next is not None
    assert [
        r["seq"] for r in find(gz_officer, "seal", before=search.parse_cursor(first.next)).results
    ] == [1]


def test_filters_by_room_sender_attachment_and_date(
    uk_officer: User, gz_officer: User, room: Room, lane_room: Room
) -> None:
    send(uk_officer, room, "seal intact")
    send(gz_officer, lane_room, "seal broken")
    assert [r["room"] for r in find(gz_officer, "seal", room_id=room.pk).results] == [room.pk]
    assert [r["body"] for r in find(gz_officer, "seal", sender_id=gz_officer.pk).results] == [
        "seal broken"
    ]
    assert find(gz_officer, "seal", has_attachment=True).results == []
    tomorrow = dt.date.today() + dt.timedelta(days=2)
    assert find(gz_officer, "seal", since=tomorrow).results == []
    assert len(find(gz_officer, "seal", until=tomorrow).results) == 2


def test_a_search_is_audited_as_a_read_without_its_text(
    uk_officer: User, gz_officer: User, room: Room
) -> None:
    send(uk_officer, room, "MSKU4417702 seized")
    find(gz_officer, "MSKU4417702")
    (row,) = AuditEvent.objects.filter(action="messages.searched")
    assert row.actor_id == gz_officer.pk
    assert row.details["results"] == 1
    assert row.details["seqs"] == [[room.pk, 1]]
    assert "MSKU" not in json.dumps(row.details)


def test_queries_too_short_or_bad_cursors_are_refused() -> None:
    with pytest.raises(Invalid):
        search.clean_query("x")
    with pytest.raises(Invalid):
        search.parse_cursor("12; drop")


def test_the_search_api_answers_results_and_next(
    uk_officer: User, gz_officer: User, room: Room
) -> None:
    send(uk_officer, room, "Please hold MSKU4417702.")
    send(gz_officer, room, "Held.", reply_to=1)
    client = sign_in(Client(), gz_officer)
    body = client.get("/api/v1/search", {"q": "MSKU4417702", "room": room.pk}).json()
    assert body["next"] is None
    (hit,) = body["results"]
    assert {"room", "seq", "body", "created_at", "sender"} <= set(hit)
    assert hit["seq"] == 1
    assert client.get("/api/v1/search", {"q": "x"}).status_code == 400
    assert (
        f'<option value="{uk_officer.pk}">Olivia Hughes'.encode() in client.get("/search/").content
    )
    by_olivia = client.get("/search/", {"q": "MSKU4417702 hold", "sender": uk_officer.pk})
    assert b"search-result-link" in by_olivia.content
    by_li = client.get("/search/", {"q": "MSKU4417702 hold", "sender": gz_officer.pk})
    assert b"search-result-link" not in by_li.content
    page = client.get("/search/", {"q": "held"})
    assert page.status_code == 200
    assert b"Please hold MSKU4417702." in page.content  # the reply's quoted parent
    assert f'href="/rooms/{room.pk}/#msg-2"'.encode() in page.content


def test_search_never_returns_a_message_from_before_the_officers_visibility_window(
    uk_officer: User, gz_officer: User, room: Room
) -> None:
    from liaison.models import HistoryVisibility, Membership, Message

    exercise = room.exercise
    exercise.history_visibility = HistoryVisibility.JOINED
    exercise.save(update_fields=["history_visibility"])
    send(uk_officer, room, "MSKU4417702 before Li Wei joined")
    send(uk_officer, room, "MSKU4417702 after Li Wei joined")
    joined = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    Message.objects.filter(room=room, seq=1).update(created_at=joined - dt.timedelta(days=1))
    Membership.objects.filter(user=gz_officer, exercise=exercise).update(created_at=joined)
    Membership.objects.filter(user=uk_officer, exercise=exercise).update(
        created_at=joined - dt.timedelta(days=2)
    )
    page = find(gz_officer, "MSKU4417702")
    assert [r["seq"] for r in page.results] == [2]
    assert page.scanned == 1  # the earlier message is not even opened
    assert [r["seq"] for r in find(uk_officer, "MSKU4417702").results] == [2, 1]
