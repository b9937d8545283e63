"""Request and frame schemas: every client frame type accepted in its documented shape and refused,
with one clear sentence naming the field, in every other; the HTTP bodies share the declarations."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client
from django.utils import translation

from liaison import schemas
from liaison.errors import Invalid
from liaison.models import Message, ReadMarker, Room, User
from liaison.realtime.frames import Frame, check_frame, decode_frame, frame_client_id

HUGE = 2**63  # one past the largest seq or id the database holds
LARGEST = 2**63 - 1


def refusal(data: object) -> Invalid:
    with pytest.raises(Invalid) as refused:
        check_frame(data)
    return refused.value


# --- every frame type, valid ---------------------------------------------------------------------


# A message.send that mentions nobody, asks no acknowledgement and names no marking.
NO_ASKS = {"mentions": None, "ack": None, "marking": None}


@pytest.mark.parametrize(
    ("data", "fields"),
    [
        (
            {"type": "message.send", "client_id": "c-1", "body": "Seal numbers match."},
            {
                "client_id": "c-1",
                "body": "Seal numbers match.",
                "reply_to": None,
                "attachments": None,
                "kind": "text",
                **NO_ASKS,
            },
        ),
        (
            {
                "type": "message.send",
                "client_id": "c-2",
                "body": "",
                "reply_to": 4,
                "attachments": [7, 8],
                "kind": "alert",
            },
            {
                "client_id": "c-2",
                "body": "",
                "reply_to": 4,
                "attachments": [7, 8],
                "kind": "alert",
                **NO_ASKS,
            },
        ),
        (
            {
                "type": "message.send",
                "client_id": "c-3",
                "body": "x",
                "reply_to": None,
                "attachments": None,
            },
            {
                "client_id": "c-3",
                "body": "x",
                "reply_to": None,
                "attachments": None,
                "kind": "text",
                **NO_ASKS,
            },
        ),
        (
            {
                "type": "message.send",
                "client_id": "c-4",
                "body": "@Li Wei please hold it",
                "mentions": {"users": [3], "room": False},
                "ack": {"agencies": ["gacc-gz"], "due_minutes": 30},
                "marking": "OFFICIAL-SENSITIVE",
            },
            {
                "client_id": "c-4",
                "body": "@Li Wei please hold it",
                "reply_to": None,
                "attachments": None,
                "kind": "text",
                "mentions": {"users": [3], "agencies": [], "room": False},
                "ack": {"agencies": ["gacc-gz"], "users": [], "due_minutes": 30},
                "marking": "OFFICIAL-SENSITIVE",
            },
        ),
        ({"type": "message.edit", "seq": 1, "body": "fixed"}, {"seq": 1, "body": "fixed"}),
        ({"type": "message.delete", "seq": LARGEST}, {"seq": LARGEST}),
        ({"type": "sync", "after_seq": 0}, {"after_seq": 0}),
        ({"type": "history"}, {"before_seq": None, "limit": None}),
        ({"type": "history", "before_seq": None}, {"before_seq": None, "limit": None}),
        ({"type": "history", "before_seq": 40, "limit": 20}, {"before_seq": 40, "limit": 20}),
        ({"type": "typing"}, {}),
        ({"type": "read", "seq": 0}, {"seq": 0}),
        ({"type": "ping"}, {}),
        ({"type": "ack", "seq": 12}, {"seq": 12}),
    ],
)
def test_every_frame_type_in_its_documented_shape_is_accepted(
    data: dict[str, Any], fields: dict[str, Any]
) -> None:
    assert check_frame(data) == Frame(type=data["type"], fields=fields)


def test_every_frame_type_has_one_schema_in_the_union() -> None:
    assert set(schemas.FRAME_SCHEMAS) == {
        "message.send",
        "message.edit",
        "message.delete",
        "sync",
        "history",
        "typing",
        "read",
        "ping",
        "ack",
    }


def test_the_send_frame_and_the_http_body_share_one_declaration() -> None:
    assert issubclass(schemas.MessageSendFrame, schemas.MessageDraft)
    assert issubclass(schemas.ReadFrame, schemas.ReadPosition)
    frame_fields = set(schemas.MessageSendFrame.model_fields) - {"type"}
    assert frame_fields == set(schemas.MessageDraft.model_fields)


# --- what is not a frame -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "detail"),
    [
        ([1, 2], "A frame must be a JSON object with a 'type'."),
        ("ping", "A frame must be a JSON object with a 'type'."),
        (None, "A frame must be a JSON object with a 'type'."),
        ({}, "A frame must have a string 'type'."),
        ({"type": None}, "A frame must have a string 'type'."),
        ({"type": 5}, "A frame must have a string 'type'."),
        ({"type": ["ping"]}, "A frame must have a string 'type'."),
        ({"type": "message.shout"}, "Unknown frame type 'message.shout'."),
        ({"type": "Ping"}, "Unknown frame type 'Ping'."),
        ({"type": "x" * 100}, "Unknown frame type '" + "x" * 40 + "'."),
    ],
)
def test_what_is_not_a_frame_of_a_known_type_is_refused(data: object, detail: str) -> None:
    assert refusal(data).detail == detail


# --- unknown fields, missing fields ---------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        {"type": "message.send", "client_id": "c", "body": "x", "to": 1},
        {"type": "message.edit", "seq": 1, "body": "x", "to": 1},
        {"type": "message.delete", "seq": 1, "to": 1},
        {"type": "sync", "after_seq": 0, "to": 1},
        {"type": "history", "to": 1},
        {"type": "typing", "to": 1},
        {"type": "read", "seq": 1, "to": 1},
        {"type": "ping", "to": 1},
    ],
)
def test_an_unknown_field_is_refused_by_every_frame_type(data: dict[str, Any]) -> None:
    error = refusal(data)
    assert error.detail == f"Unknown field 'to' in a {data['type']} frame."
    assert error.field == "to"


def test_an_unknown_field_is_named_before_other_problems() -> None:
    error = refusal({"type": "message.edit", "seq": "1", "colour": "red"})
    assert error.detail == "Unknown field 'colour' in a message.edit frame."


@pytest.mark.parametrize(
    ("data", "name"),
    [
        ({"type": "message.send", "body": "no id"}, "client_id"),
        ({"type": "message.send", "client_id": "c"}, "body"),
        ({"type": "message.edit", "body": "x"}, "seq"),
        ({"type": "message.edit", "seq": 1}, "body"),
        ({"type": "message.delete"}, "seq"),
        ({"type": "sync"}, "after_seq"),
        ({"type": "read"}, "seq"),
    ],
)
def test_a_missing_field_is_named(data: dict[str, Any], name: str) -> None:
    error = refusal(data)
    assert error.detail == f"Field '{name}' is required."
    assert error.field == name


# --- wrong types, booleans, negatives, huge numbers, nulls ----------------------------------------


AT_LEAST_1 = "must be an integer of at least 1."
AT_LEAST_0 = "must be an integer of at least 0."
NULL_OR_AT_LEAST_1 = "must be null or an integer of at least 1."
AT_MOST = f"must be an integer of at most {LARGEST}."

SEND = {"type": "message.send", "client_id": "c", "body": "x"}
EDIT = {"type": "message.edit", "seq": 1, "body": "x"}


@pytest.mark.parametrize(
    ("data", "name", "sentence"),
    [
        # wrong type
        (SEND | {"client_id": 42}, "client_id", "must be a string."),
        (SEND | {"body": 7}, "body", "must be a string."),
        (SEND | {"body": ["x"]}, "body", "must be a string."),
        (SEND | {"reply_to": "1"}, "reply_to", NULL_OR_AT_LEAST_1),
        (SEND | {"reply_to": 1.0}, "reply_to", NULL_OR_AT_LEAST_1),
        (SEND | {"kind": "system"}, "kind", 'must be one of "text", "alert".'),
        (SEND | {"kind": 1}, "kind", 'must be one of "text", "alert".'),
        (
            SEND | {"attachments": "7"},
            "attachments",
            "must be null or a list of integers of at least 1.",
        ),
        (
            SEND | {"attachments": [1, "2"]},
            "attachments",
            "must be null or a list of integers of at least 1.",
        ),
        (EDIT | {"seq": "1"}, "seq", AT_LEAST_1),
        (EDIT | {"body": None}, "body", "must be a string."),
        ({"type": "message.delete", "seq": 1.5}, "seq", AT_LEAST_1),
        ({"type": "sync", "after_seq": "0"}, "after_seq", AT_LEAST_0),
        ({"type": "history", "limit": "20"}, "limit", NULL_OR_AT_LEAST_1),
        ({"type": "read", "seq": 1.5}, "seq", AT_LEAST_0),
        # a boolean is not an integer
        (SEND | {"reply_to": True}, "reply_to", NULL_OR_AT_LEAST_1),
        (
            SEND | {"attachments": [True]},
            "attachments",
            "must be null or a list of integers of at least 1.",
        ),
        (EDIT | {"seq": True}, "seq", AT_LEAST_1),
        ({"type": "message.delete", "seq": True}, "seq", AT_LEAST_1),
        ({"type": "sync", "after_seq": False}, "after_seq", AT_LEAST_0),
        ({"type": "history", "before_seq": True}, "before_seq", NULL_OR_AT_LEAST_1),
        ({"type": "read", "seq": False}, "seq", AT_LEAST_0),
        # zero and negatives
        (SEND | {"reply_to": 0}, "reply_to", NULL_OR_AT_LEAST_1),
        (
            SEND | {"attachments": [-3]},
            "attachments",
            "must be null or a list of integers of at least 1.",
        ),
        (EDIT | {"seq": 0}, "seq", AT_LEAST_1),
        ({"type": "message.delete", "seq": -1}, "seq", AT_LEAST_1),
        ({"type": "sync", "after_seq": -1}, "after_seq", AT_LEAST_0),
        ({"type": "history", "before_seq": 0}, "before_seq", NULL_OR_AT_LEAST_1),
        ({"type": "history", "limit": 0}, "limit", NULL_OR_AT_LEAST_1),
        ({"type": "read", "seq": -1}, "seq", AT_LEAST_0),
        # beyond what the database holds
        (SEND | {"reply_to": HUGE}, "reply_to", AT_MOST),
        (
            SEND | {"attachments": [1, HUGE]},
            "attachments",
            f"must be a list of integers of at most {LARGEST}.",
        ),
        (EDIT | {"seq": HUGE}, "seq", AT_MOST),
        ({"type": "message.delete", "seq": 10**300}, "seq", AT_MOST),
        ({"type": "sync", "after_seq": HUGE}, "after_seq", AT_MOST),
        ({"type": "history", "before_seq": HUGE}, "before_seq", AT_MOST),
        ({"type": "history", "limit": HUGE}, "limit", AT_MOST),
        ({"type": "read", "seq": HUGE}, "seq", AT_MOST),
        # null where it is not allowed
        (SEND | {"client_id": None}, "client_id", "must be a string."),
        (SEND | {"body": None}, "body", "must be a string."),
        (SEND | {"kind": None}, "kind", 'must be one of "text", "alert".'),
        (EDIT | {"seq": None}, "seq", AT_LEAST_1),
        ({"type": "message.delete", "seq": None}, "seq", AT_LEAST_1),
        ({"type": "sync", "after_seq": None}, "after_seq", AT_LEAST_0),
        ({"type": "read", "seq": None}, "seq", AT_LEAST_0),
    ],
)
def test_a_field_of_the_wrong_type_or_range_gets_one_sentence_naming_it(
    data: dict[str, Any], name: str, sentence: str
) -> None:
    error = refusal(data)
    assert error.detail == f"Field '{name}' {sentence}"
    assert error.field == name
    assert error.code == "invalid"


def test_an_integer_too_long_for_python_is_not_valid_json() -> None:
    text = '{"type": "read", "seq": ' + "9" * 5000 + "}"
    with pytest.raises(Invalid) as refused:
        decode_frame(text)
    assert refused.value.detail == "The frame is not valid JSON."


def test_the_client_id_of_a_refused_send_is_echoed_only_when_it_is_a_short_string() -> None:
    assert frame_client_id(SEND | {"client_id": "c-9", "body": 7}) == "c-9"
    assert frame_client_id(SEND | {"client_id": 42}) is None
    assert frame_client_id(SEND | {"client_id": "x" * 65}) is None
    assert frame_client_id({"type": "read", "client_id": "c-9"}) is None


def test_refusals_speak_the_readers_language() -> None:
    with translation.override("zh-hans"):
        error = refusal({"type": "message.delete", "seq": 0})
    assert error.detail == "字段“seq”必须是不小于 1 的整数。"


# --- the HTTP bodies ------------------------------------------------------------------------------


def test_the_http_bodies_use_the_same_rules() -> None:
    draft = schemas.parse(schemas.MessageDraft, {"client_id": "h-1", "body": "hi"})
    assert (draft.kind, draft.reply_to, draft.attachments) == ("text", None, None)
    with pytest.raises(Invalid) as refused:
        schemas.parse(schemas.MessageDraft, {"client_id": "h-1", "body": "hi", "colour": "red"})
    assert (refused.value.detail, refused.value.field) == ("Unknown field 'colour'.", "colour")
    with pytest.raises(Invalid) as refused:
        schemas.parse(schemas.MessageDraft, {"client_id": "h-1", "body": "hi", "type": "x"})
    assert refused.value.detail == "Unknown field 'type'."
    with pytest.raises(Invalid) as refused:
        schemas.parse(schemas.ReadPosition, {"seq": True})
    assert refused.value.detail == "Field 'seq' must be an integer of at least 0."


def post(client: Client, path: str, data: object):
    return client.post(path, data=json.dumps(data), content_type="application/json")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("data", "field", "detail"),
    [
        ({"body": "no id"}, "client_id", "Field 'client_id' is required."),
        ({"client_id": "a", "body": "hi", "colour": "red"}, "colour", "Unknown field 'colour'."),
        (
            {"client_id": "a", "body": "hi", "reply_to": "1"},
            "reply_to",
            "Field 'reply_to' must be null or an integer of at least 1.",
        ),
        (
            {"client_id": "a", "body": "hi", "kind": "system"},
            "kind",
            'Field \'kind\' must be one of "text", "alert".',
        ),
    ],
)
def test_a_refused_http_post_names_the_field(
    client: Client, login_as, uk_officer: User, room: Room, data, field: str, detail: str
) -> None:
    login_as(client, uk_officer)
    response = post(client, f"/api/v1/rooms/{room.pk}/messages", data)
    assert response.status_code == 400
    assert response.json()["error"] == {"code": "invalid", "detail": detail, "field": field}
    assert not Message.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("seq", [None, True, "1", -1, HUGE])
def test_a_read_marker_over_http_must_be_a_position(
    client: Client, login_as, uk_officer: User, room: Room, seq: object
) -> None:
    login_as(client, uk_officer)
    response = post(client, f"/api/v1/rooms/{room.pk}/read", {"seq": seq})
    assert response.status_code == 400
    assert response.json()["error"]["field"] == "seq"
    assert not ReadMarker.objects.exists()


def test_an_http_body_that_is_not_an_object_is_refused_as_such() -> None:
    with pytest.raises(Invalid) as refused:
        schemas.parse(schemas.MessageDraft, ["client_id", "body"])
    assert refused.value.detail == "The request body must be a JSON object."
