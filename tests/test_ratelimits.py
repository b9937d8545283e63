"""HTTP rate limits: sliding-window counters shared by every worker, a 429 with Retry-After and
a retry time in words on every limited route, and the counts kept per user (per address for
the invitation link)."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from django.conf import settings
from django.core.cache import caches
from django.test import Client

from liaison import ratelimits
from liaison.models import Agency, Exercise, Room, User
from liaison.ratelimits import Rate, SharedWindowCounter, hit
from tests.attachments_support import BOUNDARY, multipart, upload

pytestmark = pytest.mark.django_db

_ids = itertools.count(1)


@pytest.fixture
def limits(settings: Any) -> Any:
    """``limits(name=(count, seconds), ...)`` sets those limits for the test."""

    def set_limits(**rates: tuple[int, int]) -> None:
        settings.LIAISON_RATE_LIMITS = {
            **settings.LIAISON_RATE_LIMITS,
            **{name.replace("_", "."): rate for name, rate in rates.items()},
        }

    return set_limits


def assert_refused_json(response: Any) -> int:
    assert response.status_code == 429
    retry_after = int(response["Retry-After"])
    assert retry_after >= 1
    error = response.json()["error"]
    assert error["code"] == "rate_limited"
    assert error["retry_after"] == retry_after
    assert f"Try again in {retry_after} second" in error["detail"]
    return retry_after


def assert_refused_page(response: Any) -> int:
    assert response.status_code == 429
    retry_after = int(response["Retry-After"])
    page = response.content.decode()
    assert "Too many requests" in page
    assert f"Try again in {retry_after} second" in page
    return retry_after


# --- the counters ---------------------------------------------------------------------------------


def test_the_window_slides_and_a_refusal_is_not_counted(limits: Any) -> None:
    limits(message_post=(3, 60))
    start = 6000.0  # the start of a window
    assert all(hit("message.post", "u1", now=start + i).allowed for i in range(3))
    refused = hit("message.post", "u1", now=start + 3)
    assert not refused.allowed
    # The count stays 3 to the end of this window; in the next one the 3 weigh
    # (1 - elapsed/60), and 3 * (1 - 20/60) + 1 <= 3 from 20 s in: 57 + 20 s from now.
    assert refused.retry_after == 77
    assert not hit("message.post", "u1", now=start + 59).allowed
    assert not hit("message.post", "u1", now=start + 60 + 19).allowed
    assert hit("message.post", "u1", now=start + 60 + 20).allowed
    # Other keys and other limits count apart.
    assert hit("message.post", "u2", now=start + 3).allowed
    assert hit("upload", "u1", now=start + 3).allowed


def test_the_retry_time_is_when_the_previous_window_has_faded_enough(limits: Any) -> None:
    limits(message_post=(10, 60))
    start = 60_000.0
    for i in range(10):
        assert hit("message.post", "u1", now=start + i).allowed
    # 15 s into the next window: 10 * 0.75 = 7.5, so 2 more fit, the third waits.
    later = start + 75
    assert hit("message.post", "u1", now=later).allowed
    assert hit("message.post", "u1", now=later).allowed
    refused = hit("message.post", "u1", now=later)
    assert not refused.allowed
    # 10 * (1 - t/60) + 2 + 1 <= 10  =>  t >= 18 s into the window: 3 s from now.
    assert refused.retry_after == 3
    assert not hit("message.post", "u1", now=later + 2).allowed
    assert hit("message.post", "u1", now=later + 3).allowed


def test_a_cost_counts_bytes_and_a_limit_of_zero_is_off(limits: Any) -> None:
    limits(upload_bytes=(1000, 86400), upload=(0, 60))
    assert hit("upload.bytes", "u1", cost=600, now=0).allowed
    assert not hit("upload.bytes", "u1", cost=600, now=1).allowed
    assert hit("upload.bytes", "u1", cost=400, now=2).allowed
    assert all(hit("upload", "u1").allowed for _ in range(100))


def test_an_unreachable_counter_store_lets_requests_through(
    limits: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    limits(message_post=(1, 60))

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise ConnectionError("store down")

    monkeypatch.setattr(ratelimits, "_add", broken)
    monkeypatch.setattr(ratelimits, "_last_error_logged", -1e9)
    assert hit("message.post", "u1").allowed
    assert hit("message.post", "u1").allowed
    assert "rate-limit counters unavailable" in caplog.text


def test_batched_counts_add_up_across_processes() -> None:
    """Two counters stand for two workers: each decides from memory, and after a batch each
    knows what the other counted."""
    first = SharedWindowCounter("ws.test", seconds=10)
    second = SharedWindowCounter("ws.test", seconds=10)
    now = 1000.0
    for _ in range(6):
        first.add("7", now=now)
    for _ in range(3):
        second.add("7", now=now)
    assert first.estimate("7", now=now) == 6  # nothing shared yet
    first.sync(now=now)
    second.sync(now=now)
    first.sync(now=now)  # nothing pending: no round trip, the last totals stand
    assert second.estimate("7", now=now) == 9
    second.add("7", now=now)
    assert second.estimate("7", now=now) == 10
    assert first.retry_after("7", 9, now=now) >= 1
    first.reset()
    second.reset()


@pytest.mark.skipif(not settings.REDIS_URL, reason="needs Redis (REDIS_URL)")
def test_on_redis_every_worker_sees_the_same_counts(limits: Any) -> None:
    """A second connection to Redis (another worker) continues the count of the first."""
    from django.core.cache.backends.redis import RedisCache

    limits(message_post=(3, 60))
    assert ratelimits.is_shared()
    key = f"u-redis-{next(_ids)}"
    assert hit("message.post", key).allowed
    assert hit("message.post", key).allowed
    params = dict(settings.CACHES[ratelimits.CACHE_ALIAS])
    other = RedisCache(params.pop("LOCATION"), params)
    original = caches[ratelimits.CACHE_ALIAS]
    try:
        caches[ratelimits.CACHE_ALIAS] = other
        assert hit("message.post", key).allowed
        assert not hit("message.post", key).allowed
    finally:
        caches[ratelimits.CACHE_ALIAS] = original


# --- the limited routes ---------------------------------------------------------------------------


def test_posting_messages_over_http_is_limited_per_user(
    client: Client, login_as: Any, uk_officer: User, gz_officer: User, room: Room, limits: Any
) -> None:
    limits(message_post=(2, 60))
    login_as(client, uk_officer)
    url = f"/api/v1/rooms/{room.pk}/messages"

    def post(body: str) -> Any:
        return client.post(url, {"client_id": body, "body": body}, content_type="application/json")

    assert [post(f"m{i}").status_code for i in range(2)] == [201, 201]
    assert_refused_json(post("m2"))
    assert client.get(url).status_code == 200  # reading is not counted
    other = login_as(Client(), gz_officer)
    assert (
        other.post(
            url, {"client_id": "g", "body": "g"}, content_type="application/json"
        ).status_code
        == 201
    )


def test_uploads_are_limited_in_number(
    client: Client, login_as: Any, uk_officer: User, room: Room, limits: Any
) -> None:
    limits(upload=(2, 60))
    login_as(client, uk_officer)
    assert upload(client, room, "a.txt", b"a" * 10, "text/plain").status_code == 201
    assert upload(client, room, "b.txt", b"b" * 10, "text/plain").status_code == 201
    assert_refused_json(upload(client, room, "c.txt", b"c" * 10, "text/plain"))


def test_uploads_are_limited_in_bytes_per_day_from_the_declared_length(
    client: Client, login_as: Any, uk_officer: User, room: Room, limits: Any
) -> None:
    limits(upload_bytes=(4096, 86400))
    login_as(client, uk_officer)
    assert upload(client, room, "a.txt", b"a" * 1500, "text/plain").status_code == 201
    refused = upload(client, room, "b.txt", b"b" * 3000, "text/plain")
    assert assert_refused_json(refused) > 3600  # the day's bytes are spent
    # A smaller file still fits in what is left of the day's quota.
    assert upload(client, room, "c.txt", b"c" * 100, "text/plain").status_code == 201


def test_an_upload_refused_by_its_quota_is_refused_before_its_body_is_read(
    client: Client,
    login_as: Any,
    uk_officer: User,
    room: Room,
    limits: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from liaison.services import attachments

    def never(**kwargs: Any) -> Any:
        raise AssertionError("the body was parsed")

    monkeypatch.setattr(attachments, "start_upload", never)
    limits(upload_bytes=(1000, 86400))
    login_as(client, uk_officer)
    response = client.generic(
        "POST",
        f"/api/v1/rooms/{room.pk}/attachments",
        multipart("big.bin", b"x" * 5000),
        content_type=f"multipart/form-data; boundary={BOUNDARY}",
    )
    assert_refused_json(response)


def test_auditor_search_and_export_are_limited(
    client: Client, login_as: Any, auditor: User, exercise: Exercise, room: Room, limits: Any
) -> None:
    limits(audit_search=(2, 60), audit_export=(1, 3600))
    login_as(client, auditor)
    search = f"/audit/exercises/{exercise.pk}/search/"
    assert client.get(search, {"q": "seal"}).status_code == 200
    assert client.get(search, {"q": "seal"}).status_code == 200
    assert_refused_page(client.get(search, {"q": "seal"}))
    export = f"/audit/exercises/{exercise.pk}/export/"
    assert client.post(export).status_code == 302  # asked: a job prepares it
    assert assert_refused_page(client.post(export)) > 60


def test_invitation_creation_is_limited_in_the_api_and_the_pages(
    client: Client, login_as: Any, admin: User, exercise: Exercise, hmrc: Agency, limits: Any
) -> None:
    limits(invitation_create=(2, 3600))
    login_as(client, admin)
    api = f"/api/v1/exercises/{exercise.pk}/invitations"

    def invite(number: int) -> Any:
        return client.post(
            api,
            {"email": f"officer{number}@hmrc.example", "agency": hmrc.code},
            content_type="application/json",
        )

    assert invite(1).status_code == 201
    assert client.get(api).status_code == 200  # listing is not counted
    page = f"/manage/exercises/{exercise.pk}/invitations/"
    created = client.post(
        page, {"email": "officer2@hmrc.example", "agency": hmrc.pk, "role": "member"}
    )
    assert created.status_code == 200
    assert_refused_json(invite(3))
    assert_refused_page(
        client.post(page, {"email": "officer4@hmrc.example", "agency": hmrc.pk, "role": "member"})
    )


def test_the_invitation_link_is_limited_per_address(client: Client, limits: Any) -> None:
    limits(invitation_link=(3, 60))
    for number in range(3):
        assert client.get(f"/invite/guess-{number}/").status_code == 404
    refused = client.get("/invite/guess-3/")
    assert_refused_page(refused)
    assert refused["Cache-Control"]  # the 429 page is not cached either
    # Another address is counted apart; so is a POST from the first, counted with its GETs.
    other = Client(REMOTE_ADDR="192.0.2.7")
    assert other.get("/invite/guess-4/").status_code == 404
    assert client.post("/invite/guess-5/").status_code == 429


def test_the_429_page_speaks_the_readers_language(client: Client, limits: Any) -> None:
    limits(invitation_link=(1, 60))
    client.get("/invite/x/")
    refused = client.get("/invite/y/", HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert refused.status_code == 429
    assert refused["Content-Language"] == "zh-hans"


def test_every_limit_is_documented_with_its_default() -> None:
    from pathlib import Path

    text = (Path(settings.BASE_DIR) / "docs" / "security.md").read_text()
    section = text.split("## Rate limits", 1)[1].split("\n## ", 1)[0]
    for name, (count, seconds) in settings.LIAISON_RATE_LIMITS.items():
        env = "LIAISON_RATE_" + name.upper().replace(".", "_")
        assert env in section, env
        assert f"{count}/{seconds}" in section, (name, count, seconds)
    for setting in (
        "LIAISON_WS_RATE_PER_10S",
        "LIAISON_WS_MAX_SOCKETS_PER_USER",
        "LIAISON_RATELIMIT_REDIS_URL",
    ):
        assert setting in section, setting
    assert Rate(*settings.LIAISON_RATE_LIMITS["upload.bytes"]).enabled
