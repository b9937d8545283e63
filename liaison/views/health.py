"""Liveness and readiness: the database and the channel layer, each checked for real."""

from __future__ import annotations

import asyncio
import logging

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.db import connection
from django.http import HttpRequest, JsonResponse

logger = logging.getLogger(__name__)


def _check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


async def _check_channel_layer() -> None:
    layer = get_channel_layer()
    if layer is None:
        raise RuntimeError("no channel layer configured")
    channel = await layer.new_channel("healthz.")
    try:
        await layer.send(channel, {"type": "health.ping"})
        message = await asyncio.wait_for(layer.receive(channel), timeout=3)
    finally:
        # Every check's channel would otherwise stay subscribed for the life of the worker.
        if (forget := getattr(layer, "forget_channel", None)) is not None:
            await forget(channel)
    if message.get("type") != "health.ping":
        raise RuntimeError("channel layer returned a different message")


async def healthz(request: HttpRequest) -> JsonResponse:
    checks: dict[str, str] = {}
    try:
        await sync_to_async(_check_database, thread_sensitive=True)()
        checks["database"] = "ok"
    except Exception as exc:
        logger.warning("health check: database failed: %s", exc)
        checks["database"] = "unavailable"
    try:
        await _check_channel_layer()
        checks["channel_layer"] = "ok"
    except Exception as exc:
        logger.warning("health check: channel layer failed: %s", exc)
        checks["channel_layer"] = "unavailable"
    failed = [name for name, state in checks.items() if state != "ok"]
    body = {"status": "ok" if not failed else "unavailable", "checks": checks}
    if failed:
        body["failed"] = failed
    return JsonResponse(body, status=503 if failed else 200)
