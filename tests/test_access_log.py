"""No log line holds an invitation token: daphne's access log prints a fingerprint instead."""

from __future__ import annotations

import contextlib
import secrets
import time
import urllib.error
import urllib.request
from typing import Any

from liaison.logging import fingerprint, redact_path, redact_server_access_log
from liaison.services.invitations import hash_token


def test_an_invitation_path_shows_the_start_of_the_stored_hash() -> None:
    token = secrets.token_urlsafe(32)
    assert fingerprint(token) == hash_token(token)[:12]
    assert redact_path(f"/invite/{token}/") == f"/invite/<fp:{fingerprint(token)}>/"
    assert redact_path(f"/invite/{token}") == f"/invite/<fp:{fingerprint(token)}>"
    escaped = f"/login/?next=%2Finvite%2F{token}%2F&lang=en"
    assert redact_path(escaped) == f"/login/?next=%2Finvite%2F<fp:{fingerprint(token)}>%2F&lang=en"
    assert token not in redact_path(f"/invite/{token}/?again=/invite/{token}/")


def test_other_paths_are_left_alone() -> None:
    for path in ["/", "/ws/rooms/12/", "/api/v1/exercises/3/invitations", "/reinvite/abc/"]:
        assert redact_path(path) == path


def test_every_access_log_action_gets_the_redacted_path() -> None:
    from daphne.server import Server

    assert redact_server_access_log() is True
    assert redact_server_access_log() is True  # installed once
    seen: list[tuple[str, str, dict[str, Any]]] = []
    server = Server.__new__(Server)
    server.action_logger = lambda protocol, action, details: seen.append(
        (protocol, action, details)
    )
    token = secrets.token_urlsafe(32)
    details = {"path": f"/invite/{token}/", "status": 404, "method": "GET", "client": "x"}
    Server.log_action(server, "http", "complete", details)
    Server.log_action(server, "websocket", "connecting", {"path": "/ws/rooms/1/", "client": "x"})
    assert seen[0][2]["path"] == f"/invite/<fp:{fingerprint(token)}>/"
    assert details["path"] == f"/invite/{token}/"  # the caller's dict is not changed
    assert seen[1][2]["path"] == "/ws/rooms/1/"


def _request(url: str, data: bytes | None = None) -> None:
    with contextlib.suppress(urllib.error.HTTPError):
        urllib.request.urlopen(urllib.request.Request(url, data=data), timeout=10).read()


def test_the_daphne_command_line_logs_no_token(workers) -> None:
    """The server as ``make run`` and the image start it: daphne's access log on stdout."""
    worker = workers.start()
    token = secrets.token_urlsafe(32)
    _request(f"{worker.url}/invite/{token}/")
    _request(f"{worker.url}/invite/{token}/", data=b"x=1")
    _request(f"{worker.url}/login/?next=%2Finvite%2F{token}%2F")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and worker.log.read_text().count("<fp:") < 3:
        time.sleep(0.1)
    log = worker.log.read_text()
    assert token not in log
    assert log.count(f"<fp:{fingerprint(token)}>") >= 3, log[-2000:]
