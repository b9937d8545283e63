"""Structured logs: one JSON object per line, each request with its id, user, exercise, route,
status and duration, and never a message's text, a file's content, a token or a password."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.test import Client

from liaison.logging import JsonFormatter, RedactRequestPaths, RequestContextFilter
from liaison.models import Exercise, Room, User
from liaison.services import messaging
from tests.attachments_support import BOUNDARY, multipart

CANARY_BODY = "CANARY-BODY-7f3e9a: container MSCU 4471 holds undeclared e-waste"
CANARY_FILE = b"%PDF-1.7\nCANARY-FILE-c41d02 bill of lading 0042\n"
CANARY_EDIT = "CANARY-EDIT-55b1e0 corrected weight 18.2 t"
CANARY_PASSWORD = "CANARY-PASSWORD-92ac!x"


class Captured:
    def __init__(self, stream: io.StringIO) -> None:
        self.stream = stream

    @property
    def text(self) -> str:
        return self.stream.getvalue()

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.text.splitlines() if line.strip()]

    def requests(self) -> list[dict[str, Any]]:
        return [line for line in self.lines() if line["logger"] == "liaison.request"]


@pytest.fixture
def captured_logs() -> Iterator[Captured]:
    """Everything logged, at every level, through the production handler's filters and the
    JSON formatter (Django's own request warnings included)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RequestContextFilter())
    handler.addFilter(RedactRequestPaths())
    handler.setFormatter(JsonFormatter())
    handler.setLevel(logging.DEBUG)
    root = logging.getLogger()
    noisy = [logging.getLogger(name) for name in ("django.request", "axes", "liaison")]
    levels = [root.level, *(logger.level for logger in noisy)]
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    for logger in noisy:
        logger.setLevel(logging.DEBUG)
    try:
        yield Captured(stream)
    finally:
        root.removeHandler(handler)
        root.setLevel(levels[0])
        for logger, level in zip(noisy, levels[1:], strict=True):
            logger.setLevel(level)


# --- the formatter ------------------------------------------------------------------------------


def format_record(**extra: Any) -> dict[str, Any]:
    record = logging.LogRecord("liaison.test", logging.WARNING, __file__, 1, "seen %s", (3,), None)
    for name, value in extra.items():
        setattr(record, name, value)
    RequestContextFilter().filter(record)
    return json.loads(JsonFormatter().format(record))


def test_a_record_is_one_json_line_with_time_level_logger_and_message() -> None:
    line = format_record(attachment_id=12, size=4096)
    assert line["level"] == "WARNING"
    assert line["logger"] == "liaison.test"
    assert line["message"] == "seen 3"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line["time"])
    assert (line["attachment_id"], line["size"]) == (12, 4096)
    assert "\n" not in JsonFormatter().format(
        logging.LogRecord("x", logging.INFO, __file__, 1, "two\nlines", (), None)
    )


def test_fields_that_could_carry_secrets_are_never_written() -> None:
    class Request:
        def __str__(self) -> str:
            return "<GET /invite/secret-token/>"

    line = format_record(
        body="the message",
        text="the message",
        content=b"file",
        token="t0k3n",
        invitation_token="t0k3n",
        password="pw",
        new_password="pw",
        session_key="abc",
        otp="123456",
        authorization="Bearer x",
        request=Request(),
        recipients=["a", "b"],
        room_id=7,
    )
    written = json.dumps(line)
    for leaked in ("the message", "file", "t0k3n", '"pw"', "abc", "123456", "Bearer", "secret"):
        assert leaked not in written, leaked
    assert line["room_id"] == 7
    assert "recipients" not in line


def test_settings_route_every_record_through_the_filters() -> None:
    console = settings.LOGGING["handlers"]["console"]
    assert console["filters"] == ["request_context", "redact_paths"]
    assert settings.LOGGING["formatters"]["json"]["()"] == "liaison.logging.JsonFormatter"
    assert console["formatter"] == settings.LIAISON_LOG_FORMAT
    assert settings.MIDDLEWARE[0] == "liaison.logging.RequestLogMiddleware"


# --- request lines ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_each_request_gets_an_id_in_its_log_line_and_response(
    client: Client, captured_logs: Captured
) -> None:
    response = client.get("/login/")
    assert response.status_code == 200
    request_id = response["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", request_id)
    [line] = [r for r in captured_logs.requests() if r["route"] == "login/"]
    assert line["request_id"] == request_id
    assert (line["method"], line["status"]) == ("GET", 200)
    assert line["duration_ms"] >= 0
    assert "user_id" not in line

    forwarded = client.get("/login/", HTTP_X_REQUEST_ID="nginx-0a1b2c3d4e5f")
    assert forwarded["X-Request-ID"] == "nginx-0a1b2c3d4e5f"
    refused = client.get("/login/", HTTP_X_REQUEST_ID="not an id; DROP TABLE")
    assert re.fullmatch(r"[0-9a-f]{32}", refused["X-Request-ID"])


@pytest.mark.django_db
def test_a_journey_logs_who_where_and_how_it_went_but_no_content_tokens_or_passwords(
    client: Client,
    login_as: Any,
    admin: User,
    uk_officer: User,
    exercise: Exercise,
    room: Room,
    hmrc: Any,
    store: Path,
    captured_logs: Captured,
    django_capture_on_commit_callbacks: Any,
) -> None:
    # The admin invites an officer; the API answers with the token, this once.
    admin_client = login_as(Client(), admin)
    issued = admin_client.post(
        f"/api/v1/exercises/{exercise.pk}/invitations",
        data=json.dumps({"email": "new.officer@hmrc.example", "agency": hmrc.code}),
        content_type="application/json",
    )
    assert issued.status_code == 201, issued.content
    token = issued.json()["token"]
    # The officer opens the link, and someone tries a forged one.
    assert client.get(f"/invite/{token}/").status_code == 200
    client.get(f"/invite/{token[:-4]}zzzz/")
    # Someone mistypes a password.
    client.post("/login/", {"username": uk_officer.email, "password": CANARY_PASSWORD})
    # Olivia chats, edits, and shares a file.
    olivia = login_as(Client(), uk_officer)
    with django_capture_on_commit_callbacks(execute=True):
        sent = olivia.post(
            f"/api/v1/rooms/{room.pk}/messages",
            data=json.dumps({"client_id": "canary-1", "body": CANARY_BODY}),
            content_type="application/json",
        )
        assert sent.status_code == 201, sent.content
        uploaded = olivia.post(
            f"/api/v1/rooms/{room.pk}/attachments",
            data=multipart("canary.pdf", CANARY_FILE, "application/pdf"),
            content_type=f"multipart/form-data; boundary={BOUNDARY}",
        )
        messaging.edit_message(
            user=uk_officer, room_id=room.pk, seq=sent.json()["message"]["seq"], body=CANARY_EDIT
        )
    assert olivia.get(f"/api/v1/rooms/{room.pk}/messages").status_code == 200

    text = captured_logs.text
    assert text, "nothing was logged"
    for leaked in (
        CANARY_BODY,
        "CANARY-BODY",
        "CANARY-FILE",
        "CANARY-EDIT",
        CANARY_PASSWORD,
        token,
        token[:16],
    ):
        assert leaked not in text, f"{leaked!r} reached the log"
    lines = captured_logs.lines()
    assert all({"time", "level", "logger", "message"} <= set(line) for line in lines)

    requests = captured_logs.requests()
    invite_lines = [r for r in requests if r["route"] == "invite/<str:token>/"]
    assert len(invite_lines) == 2
    room_lines = [r for r in requests if r["route"] == "api/v1/rooms/<int:room_id>/messages"]
    assert [(r["method"], r["status"]) for r in room_lines] == [("POST", 201), ("GET", 200)]
    assert all(r["user_id"] == uk_officer.pk and r["room"] == room.pk for r in room_lines)
    [invited] = [r for r in requests if r["route"].endswith("/invitations")]
    assert (invited["user_id"], invited["exercise"], invited["status"]) == (
        admin.pk,
        exercise.pk,
        201,
    )
    assert uploaded.status_code == 201, uploaded.content
    assert len({r["request_id"] for r in requests}) == len(requests)


@pytest.mark.django_db
def test_djangos_not_found_warnings_name_the_route_not_the_path(
    client: Client, login_as: Any, uk_officer: User, captured_logs: Captured
) -> None:
    secret_path_part = "0123456789abcdef-not-for-logs"
    login_as(client, uk_officer)
    response = client.get(f"/api/v1/attachments/{10**9}?token={secret_path_part}")
    assert response.status_code == 404
    client.get(f"/no-such-page/{secret_path_part}/")
    assert secret_path_part not in captured_logs.text
    assert str(10**9) not in captured_logs.text
    [warning] = [
        line
        for line in captured_logs.lines()
        if line["logger"] == "django.request" and "attachments" in line["message"]
    ]
    assert warning["message"] == "Not Found: api/v1/attachments/<int:attachment_id>"
    assert warning["request_id"] == response["X-Request-ID"]


async def test_under_asgi_the_middleware_stays_async(captured_logs: Captured) -> None:
    """Outermost and async capable: no thread hop in front of an async chain."""
    from asgiref.sync import iscoroutinefunction
    from django.http import HttpResponse
    from django.test import RequestFactory

    from liaison.logging import RequestLogMiddleware, current_request_id

    seen: list[str | None] = []

    async def inner(request: Any) -> HttpResponse:
        seen.append(current_request_id())
        logging.getLogger("liaison.test").info("inside the view")
        return HttpResponse(status=204)

    middleware = RequestLogMiddleware(inner)
    assert iscoroutinefunction(middleware)
    response = await middleware(RequestFactory().get("/healthz"))
    assert response.status_code == 204
    assert seen == [response["X-Request-ID"]]
    [inside] = [line for line in captured_logs.lines() if line["message"] == "inside the view"]
    assert inside["request_id"] == response["X-Request-ID"]
    [line] = captured_logs.requests()
    assert (line["request_id"], line["status"], line["route"]) == (
        response["X-Request-ID"],
        204,
        "<unmatched>",
    )
    assert current_request_id() is None
