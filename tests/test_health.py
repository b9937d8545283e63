"""GET /healthz reports the database and the channel layer, each checked for real."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import AsyncClient

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.django_db(transaction=True)
async def test_healthz_is_ok_when_database_and_layer_answer() -> None:
    response = await AsyncClient().get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "channel_layer": "ok"}}


@pytest.mark.django_db(transaction=True)
async def test_health_checks_leave_no_channel_behind() -> None:
    from channels.layers import get_channel_layer

    layer = get_channel_layer()
    inner = layer._get_layer() if hasattr(layer, "_get_layer") else layer
    for _ in range(3):
        assert (await AsyncClient().get("/healthz")).status_code == 200
    assert not [name for name in inner.channels if "healthz." in name]


def test_healthz_names_an_unreachable_database_with_503() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIAISON_")}
    # Nothing listens on port 1: the database is unreachable for real.
    env["DATABASE_URL"] = "postgres://postgres@127.0.0.1:1/liaison?connect_timeout=2"
    code = (
        "import django, os, json; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'config.settings');"
        "django.setup(); from django.test import Client;"
        "r = Client().get('/healthz'); print(json.dumps([r.status_code, r.json()]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    status, body = json.loads(result.stdout.strip().splitlines()[-1])
    assert status == 503
    assert body["checks"]["database"] == "unavailable"
    assert body["failed"] == ["database"]
