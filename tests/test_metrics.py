"""Prometheus metrics: /metrics answers only with its token, and a short chat moves the counters
an operator alerts on."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from liaison import metrics
from liaison.models import Room, User
from tests.attachments_support import pdf_of_size, upload

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "metrics-token-for-tests-0123456789abcdef"


@pytest.fixture
def metrics_token(settings: Any) -> str:
    settings.LIAISON_METRICS_TOKEN = TOKEN
    return TOKEN


def scrape(client: Client, token: str | None = TOKEN) -> Any:
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token is not None else {}
    return client.get("/metrics", **headers)


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


# --- the endpoint is refused without its token ----------------------------------------------------


@pytest.mark.django_db
def test_metrics_are_refused_without_the_token(client: Client, metrics_token: str) -> None:
    assert scrape(client, token=None).status_code == 404
    assert scrape(client, token="wrong-token-wrong-token-wrong-token").status_code == 404
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Basic {metrics_token}").status_code == 404
    assert client.post("/metrics", HTTP_AUTHORIZATION=f"Bearer {metrics_token}").status_code in (
        404,
        405,
    )
    response = scrape(client)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    assert "no-store" in response["Cache-Control"] or "max-age=0" in response["Cache-Control"]


@pytest.mark.django_db
def test_without_a_configured_token_there_is_no_endpoint(client: Client, settings: Any) -> None:
    settings.LIAISON_METRICS_TOKEN = ""
    assert scrape(client, token="").status_code == 404
    assert scrape(client, token=TOKEN).status_code == 404


@pytest.mark.django_db
def test_every_metric_an_operator_alerts_on_is_exposed(client: Client, metrics_token: str) -> None:
    text = scrape(client).content.decode()
    families = {family.name for family in text_string_to_metric_families(text)}
    assert {
        "liaison_websockets_open",
        "liaison_messages_stored",
        "liaison_send_latency_seconds",
        "liaison_fanout_latency_seconds",
        "liaison_channel_layer_errors",
        "liaison_audit_append_seconds",
        "liaison_login_failures",
        "liaison_lockouts",
        "liaison_upload_bytes",
        "liaison_job_queue_depth",
        "liaison_http_requests",
        "liaison_http_request_seconds",
    } <= families
    assert value("liaison_job_queue_depth") == 0


# --- a short chat moves the counters ------------------------------------------------------------------


@pytest.mark.django_db
def test_a_short_chat_shows_in_the_scrape(
    client: Client,
    login_as: Any,
    uk_officer: User,
    gz_officer: User,
    room: Room,
    store: Path,
    metrics_token: str,
    django_capture_on_commit_callbacks: Any,
) -> None:
    before = samples(scrape(Client()).content.decode())
    olivia = login_as(Client(), uk_officer)
    li_wei = login_as(Client(), gz_officer)
    evidence = pdf_of_size(4096)
    with django_capture_on_commit_callbacks(execute=True):
        for number, (sender, body) in enumerate(
            [
                (olivia, "Container MSCU 123 leaves Felixstowe tonight."),
                (li_wei, "Received; Nansha will inspect on arrival."),
                (olivia, "Manifest attached."),
            ]
        ):
            response = sender.post(
                f"/api/v1/rooms/{room.pk}/messages",
                data=json.dumps({"client_id": f"chat-{number}", "body": body}),
                content_type="application/json",
            )
            assert response.status_code == 201, response.content
        assert upload(olivia, room, "manifest.pdf", evidence).status_code == 201
    # A wrong password, as someone mistyping would.
    client.post("/login/", {"username": uk_officer.email, "password": "not-the-password-1"})

    after = samples(scrape(Client()).content.decode())

    def moved(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0.0) - before.get(key, 0.0)

    assert moved("liaison_messages_stored_total") == 3
    assert moved("liaison_upload_bytes_total") == len(evidence)
    assert moved("liaison_login_failures_total", stage="password") == 1
    route = "api/v1/rooms/<int:room_id>/messages"
    assert moved("liaison_http_requests_total", route=route, method="POST", status="201") == 3
    assert moved("liaison_http_request_seconds_count", route=route) == 3
    # The route pattern is the label, never a path with ids or tokens in it.
    assert not any(
        f"/api/v1/rooms/{room.pk}" in dict(labels).get("route", "") for _, labels in after
    )


@pytest.mark.django_db
def test_lockouts_are_counted(client: Client, uk_officer: User) -> None:
    before = value("liaison_lockouts_total")
    for _ in range(5):
        client.post("/login/", {"username": uk_officer.email, "password": "not-the-password-1"})
    assert value("liaison_lockouts_total") - before == 1


# --- what the real-time consumer and the audit chain record ------------------------------------


def test_recording_functions_feed_their_metrics() -> None:
    sends = value("liaison_send_latency_seconds_count")
    fanouts = value("liaison_fanout_latency_seconds_count")
    errors = value("liaison_channel_layer_errors_total", operation="publish")
    appends = value("liaison_audit_append_seconds_count")
    open_sockets = value("liaison_websockets_open")

    metrics.observe_send_latency(0.012)
    metrics.observe_fanout_latency(0.030)
    metrics.count_channel_layer_error("publish")
    metrics.observe_audit_append(0.002)
    metrics.SOCKETS_OPEN.inc()
    try:
        assert value("liaison_send_latency_seconds_count") == sends + 1
        assert value("liaison_send_latency_seconds_bucket", le="0.025") >= 1
        assert value("liaison_fanout_latency_seconds_count") == fanouts + 1
        assert value("liaison_channel_layer_errors_total", operation="publish") == errors + 1
        assert value("liaison_audit_append_seconds_count") == appends + 1
        assert value("liaison_websockets_open") == open_sockets + 1
    finally:
        metrics.SOCKETS_OPEN.dec()
    metrics.set_job_queue_depth(-3)
    assert value("liaison_job_queue_depth") == 0


# --- several worker processes, one scrape ----------------------------------------------------------

CHILD = """
import sys
import django
django.setup()
from liaison import metrics
if sys.argv[1] == "scrape":
    sys.stdout.write(metrics.exposition().decode())
else:
    metrics.MESSAGES_STORED.inc(int(sys.argv[1]))
    metrics.observe_send_latency(0.01)
"""


def test_multiprocess_mode_adds_up_every_worker(tmp_path: Path) -> None:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}

    def run(argument: str) -> str:
        result = subprocess.run(
            [sys.executable, "-c", CHILD, argument],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    run("2")
    run("3")
    scraped = samples(run("scrape"))
    assert scraped[("liaison_messages_stored_total", ())] == 5
    assert scraped[("liaison_send_latency_seconds_count", ())] == 2
