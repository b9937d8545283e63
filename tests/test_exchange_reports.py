"""Seizure reports: Li Wei reports a seizure at Nansha into the room, Olivia sees the card, and
at the end of the operation every report of the exercise leaves as one CSV."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest
from django.test import Client

from liaison import audit
from liaison.crypto import records
from liaison.errors import Invalid
from liaison.exchange import reports as seizure
from liaison.models import AuditEvent, Message, Room, User
from liaison.services import messaging, reports

pytestmark = pytest.mark.django_db

REPORT = {
    "date": "2026-11-12",
    "place": "Nansha port, berth 3",
    "container_no": "cmau 3350033",
    "hs_code": "3915.90",
    "commodity": "Mixed plastic waste declared as PET flakes",
    "quantity": 21.5,
    "unit": "t",
    "concealment": "Under a layer of clean flakes",
    "agencies": ["GACC Guangzhou Customs", "HM Revenue & Customs"],
    "notes": "Exporter notified through the liaison room.",
}


# --- the report itself --------------------------------------------------------------------------


def test_a_report_is_cleaned_and_survives_its_message_body() -> None:
    report = seizure.clean_report(REPORT)

    assert report.container_no == "CMAU3350033"
    assert report.hs_code == "391590"
    assert seizure.parse_body(report.body()) == report
    assert json.loads(report.body())["type"] == "seizure_report"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"date": "12/11/2026"}, "date"),
        ({"container_no": "CMAU3350034"}, "container_no"),
        ({"hs_code": "391"}, "hs_code"),
        ({"quantity": 0}, "quantity"),
        ({"quantity": "lots"}, "quantity"),
        ({"unit": "boxes"}, "unit"),
        ({"place": "  "}, "place"),
        ({"commodity": "x" * 201}, "commodity"),
        ({"agencies": ["x" * 101]}, "agencies"),
    ],
)
def test_a_bad_field_is_refused_by_name(change: dict[str, Any], field: str) -> None:
    with pytest.raises(Invalid) as refused:
        seizure.clean_report({**REPORT, **change})
    assert refused.value.field == field


def test_agencies_may_be_typed_with_commas_and_a_body_of_plain_text_is_no_report() -> None:
    report = seizure.clean_report({**REPORT, "agencies": "GACC, HMRC , "})
    assert report.agencies == ["GACC", "HMRC"]
    assert seizure.parse_body("Seized 20 t at Nansha") is None
    assert seizure.parse_body('{"type": "seizure_report"}') is None


# --- posting --------------------------------------------------------------------------------------


def _post(client: Client, room: Room, body: dict[str, Any]) -> Any:
    return client.post(
        f"/api/v1/rooms/{room.pk}/reports", json.dumps(body), content_type="application/json"
    )


def test_a_report_is_posted_as_a_report_message_everyone_in_the_room_receives(
    login_as: Any,
    room: Room,
    gz_officer: User,
    captured_events: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    client = login_as(Client(), gz_officer)

    with django_capture_on_commit_callbacks(execute=True):
        first = _post(client, room, {"client_id": "seizure-1", **REPORT})
    again = _post(client, room, {"client_id": "seizure-1", **REPORT})

    assert first.status_code == 201, first.content
    assert again.status_code == 200
    message = Message.objects.get(room=room)
    assert message.kind == "report"
    assert seizure.parse_body(records.open_message_body(message)).place == "Nansha port, berth 3"
    (event,) = captured_events.to_group(f"room.{room.pk}")
    assert json.loads(event["frame"])["message"]["kind"] == "report"
    # One message for the client_id, on the room's chain like any other (the chain is its
    # record: no audit row per message); the resend moved neither seq nor chain head.
    assert (message.sender_id, message.client_id, message.seq) == (gz_officer.pk, "seizure-1", 1)
    room.refresh_from_db()
    assert (room.last_seq, room.chain_head) == (1, message.chain_hash)
    assert message.prev_hash == audit.GENESIS_HASH
    assert not AuditEvent.objects.filter(target_type="message").exists()


def test_a_report_with_a_bad_field_is_refused_naming_it(
    login_as: Any, room: Room, gz_officer: User
) -> None:
    response = _post(
        login_as(Client(), gz_officer), room, {"client_id": "s", **REPORT, "unit": "boxes"}
    )
    assert response.status_code == 400
    assert response.json()["error"]["field"] == "unit"
    unknown = _post(login_as(Client(), gz_officer), room, {"client_id": "s", **REPORT, "x": 1})
    assert unknown.status_code == 400


def test_observers_and_outsiders_post_no_report(
    login_as: Any, room: Room, gz_observer: User, outsider: User
) -> None:
    assert (
        _post(login_as(Client(), gz_observer), room, {"client_id": "a", **REPORT}).status_code
        == 403
    )
    assert (
        _post(login_as(Client(), outsider), room, {"client_id": "b", **REPORT}).status_code == 404
    )
    assert not Message.objects.exists()


def test_the_form_posts_a_report_and_returns_to_the_room(
    login_as: Any, room: Room, gz_officer: User
) -> None:
    client = login_as(Client(), gz_officer)
    form = {**REPORT, "agencies": "GACC, HMRC", "client_id": "form-1"}

    page = client.get(f"/rooms/{room.pk}/report/")
    bad = client.post(f"/rooms/{room.pk}/report/", {**form, "date": "soon"})
    good = client.post(f"/rooms/{room.pk}/report/", form)

    assert page.status_code == 200
    assert 'name="concealment"' in page.content.decode()
    assert bad.status_code == 400
    assert "YYYY-MM-DD" in bad.content.decode()
    assert good.status_code == 302
    assert good["Location"] == f"/rooms/{room.pk}/"
    report = seizure.parse_body(records.open_message_body(Message.objects.get()))
    assert report.agencies == ["GACC", "HMRC"]


def test_the_room_page_links_the_report_form_and_the_data_exchange(
    login_as: Any, room: Room, gz_officer: User
) -> None:
    html = login_as(Client(), gz_officer).get(f"/rooms/{room.pk}/").content.decode()
    assert f'href="/rooms/{room.pk}/report/"' in html
    assert f'href="/exercises/{room.exercise_id}/data/"' in html


# --- the export -------------------------------------------------------------------------------------


def test_every_report_of_the_exercise_leaves_as_one_csv(
    login_as: Any, room: Room, lane_room: Room, gz_officer: User, uk_officer: User, outsider: User
) -> None:
    reports.post_report(sender=gz_officer, room_id=room.pk, client_id="r1", fields=REPORT)
    reports.post_report(
        sender=uk_officer,
        room_id=lane_room.pk,
        client_id="r2",
        fields={**REPORT, "place": '=HYPERLINK("http://evil.example")', "container_no": ""},
    )
    edited = reports.post_report(sender=uk_officer, room_id=room.pk, client_id="r3", fields=REPORT)
    messaging.edit_message(
        user=uk_officer, room_id=room.pk, seq=edited.message.seq, body="withdrawn, see r1"
    )
    messaging.send_message(sender=gz_officer, room_id=room.pk, client_id="t", body="plain text")

    response = login_as(Client(), uk_officer).get(f"/api/v1/exercises/{room.exercise_id}/reports")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert rows[0] == list(seizure.EXPORT_COLUMNS)
    assert len(rows) == 3
    first = dict(zip(rows[0], rows[1], strict=True))
    assert first["container_no"] == "CMAU3350033"
    assert first["quantity"] == "21.5"
    assert first["agencies"] == "GACC Guangzhou Customs; HM Revenue & Customs"
    assert first["reported_by"] == "Li Wei"
    second = dict(zip(rows[0], rows[2], strict=True))
    assert second["place"].startswith("'=HYPERLINK")
    event = AuditEvent.objects.get(action="report.exported")
    assert (event.details["reports"], event.details["unreadable"]) == (2, 1)
    outside = login_as(Client(), outsider).get(f"/api/v1/exercises/{room.exercise_id}/reports")
    assert outside.status_code == 404
