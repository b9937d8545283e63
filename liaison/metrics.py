"""Prometheus metrics: what an operator watches, served at ``/metrics`` behind a bearer token.

Each daphne worker is its own process with its own counters. Run one worker per container and
scrape every replica (the default in ``docker-compose.yml``), or, with several worker processes
behind one scrape target, set ``PROMETHEUS_MULTIPROC_DIR`` to an empty directory before they
start: each process then writes its values there and the endpoint adds them up
(prometheus_client's multiprocess mode; see docs/operations.md).

Fed here from signals: messages stored, upload bytes, login failures, lockouts, HTTP requests.
Fed by callers: the real-time consumer (``SOCKETS_OPEN``, ``observe_send_latency``,
``observe_fanout_latency``, ``count_channel_layer_error``) and the audit chain
(``observe_audit_append``); the job worker sets ``set_job_queue_depth``.
"""

from __future__ import annotations

import hmac
import logging
import os
from typing import Any

from axes.signals import user_locked_out
from django.conf import settings
from django.contrib.auth.signals import user_login_failed
from django.db import transaction
from django.db.models.signals import post_save
from django.dispatch import receiver
from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

logger = logging.getLogger(__name__)

# Latencies of a chat: most sends are acknowledged in milliseconds; seconds mean trouble.
CHAT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
AUDIT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
HTTP_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

SOCKETS_OPEN = Gauge(
    "liaison_websockets_open",
    "Room WebSockets currently open.",
    multiprocess_mode="livesum",
)
MESSAGES_STORED = Counter("liaison_messages_stored", "Messages stored (committed).")
SEND_LATENCY = Histogram(
    "liaison_send_latency_seconds",
    "From a send frame received to its ack sent back to the sender.",
    buckets=CHAT_BUCKETS,
)
FANOUT_LATENCY = Histogram(
    "liaison_fanout_latency_seconds",
    "From a message stored to its delivery frame sent to a recipient's socket.",
    buckets=CHAT_BUCKETS,
)
CHANNEL_LAYER_ERRORS = Counter(
    "liaison_channel_layer_errors",
    "Failed channel-layer operations (publish, group join or leave, receive).",
    ["operation"],
)
AUDIT_APPEND_LATENCY = Histogram(
    "liaison_audit_append_seconds",
    "Time to append one event to the audit chain (lock, hash, insert).",
    buckets=AUDIT_BUCKETS,
)
LOGIN_FAILURES = Counter(
    "liaison_login_failures", "Failed sign-in attempts (password or second factor).", ["stage"]
)
LOCKOUTS = Counter("liaison_lockouts", "Accounts or addresses locked out after failures.")
UPLOAD_BYTES = Counter("liaison_upload_bytes", "Plaintext bytes of attachments stored.")
JOB_QUEUE_DEPTH = Gauge(
    "liaison_job_queue_depth",
    "Background jobs waiting to run (0 while there is no job queue).",
    multiprocess_mode="livemax",
)
HTTP_REQUESTS = Counter(
    "liaison_http_requests", "HTTP requests answered.", ["route", "method", "status"]
)
HTTP_LATENCY = Histogram(
    "liaison_http_request_seconds",
    "HTTP request duration, by route.",
    ["route"],
    buckets=HTTP_BUCKETS,
)


# --- what callers record ------------------------------------------------------------------------


def observe_send_latency(seconds: float) -> None:
    """A send frame's receive → ack time (the consumer calls this once per acked send)."""
    SEND_LATENCY.observe(max(seconds, 0.0))


def observe_fanout_latency(seconds: float) -> None:
    """A stored message's store → delivery time at one recipient socket."""
    FANOUT_LATENCY.observe(max(seconds, 0.0))


def count_channel_layer_error(operation: str) -> None:
    """One failed channel-layer call; ``operation`` is a short fixed word (publish, join…)."""
    CHANNEL_LAYER_ERRORS.labels(operation=operation).inc()


def observe_audit_append(seconds: float) -> None:
    AUDIT_APPEND_LATENCY.observe(max(seconds, 0.0))


def set_job_queue_depth(depth: int) -> None:
    JOB_QUEUE_DEPTH.set(max(depth, 0))


def observe_http_request(*, route: str, method: str, status: int, seconds: float) -> None:
    """Called by the request log middleware (liaison/logging.py) for every response."""
    HTTP_REQUESTS.labels(route=route, method=method, status=str(status)).inc()
    HTTP_LATENCY.labels(route=route).observe(max(seconds, 0.0))


# --- what signals record ------------------------------------------------------------------------


def message_stored() -> None:
    """Called where messages are stored (``services.room_append``), in their transaction."""
    transaction.on_commit(MESSAGES_STORED.inc)


@receiver(post_save, sender="liaison.Attachment", dispatch_uid="liaison.metrics.upload_stored")
def _upload_stored(sender: Any, instance: Any, created: bool, **kwargs: Any) -> None:
    if created and instance.size:
        size = int(instance.size)
        transaction.on_commit(lambda: UPLOAD_BYTES.inc(size))


@receiver(user_login_failed, dispatch_uid="liaison.metrics.login_failed")
def _login_failed(sender: Any, credentials: dict, **kwargs: Any) -> None:
    stage = "otp" if credentials.get("stage") == "otp" else "password"
    LOGIN_FAILURES.labels(stage=stage).inc()


@receiver(user_locked_out, dispatch_uid="liaison.metrics.locked_out")
def _locked_out(sender: Any, **kwargs: Any) -> None:
    LOCKOUTS.inc()


# --- the endpoint ---------------------------------------------------------------------------------


def multiprocess_dir() -> str:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")


def exposition() -> bytes:
    """The metrics text: this process's registry, or every process's under multiprocess mode."""
    if multiprocess_dir():
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)
    return generate_latest(REGISTRY)


def _token_ok(request: HttpRequest) -> bool:
    expected = getattr(settings, "LIAISON_METRICS_TOKEN", "")
    if not expected:
        return False
    scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not presented:
        return False
    return hmac.compare_digest(presented.strip().encode(), expected.encode())


@never_cache
@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    """Answers as if there were no such page unless the bearer token matches (or none is set)."""
    if not _token_ok(request):
        if request.headers.get("Authorization"):
            logger.warning("metrics: refused a scrape with a wrong token")
        raise Http404()
    return HttpResponse(exposition(), content_type=CONTENT_TYPE_LATEST)
