"""The load test (``manage.py loadtest``, bench/loadtest.py) against real servers, kept small:
officers sign in through the API and chat over real sockets, and every figure comes back."""

from __future__ import annotations

import asyncio
import json
import math
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.management.base import CommandError

from bench import loadtest
from tests.conftest import LiveServer

SMOKE = loadtest.Scenario(
    "smoke", rooms=2, per_room=3, rate=30.0, duration=2.0, messages=60, drain=20.0
)


def assert_complete(result: loadtest.Result, *, messages: int, per_room: int) -> None:
    assert result.connected == result.sockets
    assert result.sent == messages
    assert result.acked == messages
    assert result.lost == 0
    assert result.duplicated == 0
    assert result.expected_deliveries == messages * per_room
    assert result.deliveries == messages * per_room
    assert result.delivered_pct == 100
    for figure in (result.latency_ms["p50"], result.latency_ms["p99"], result.ack_ms["p99"]):
        assert figure > 0
        assert not math.isnan(figure)
    assert result.messages_per_s > 0
    assert result.connect_s > 0


@pytest.mark.live_server
@pytest.mark.django_db(transaction=True)
def test_officers_sign_in_and_every_message_reaches_every_socket_once(
    asgi_server: LiveServer,
) -> None:
    with urllib.request.urlopen(f"{asgi_server.url}/healthz", timeout=60) as response:
        assert response.status == 200
    cache = loadtest.SessionCache(None)
    world = loadtest.ensure_world(officers=6, rooms=2, password=cache.password)
    keys = loadtest.sign_in_all(world, world.officers, [asgi_server.url], cache, timeout=120)
    assert len(set(keys.values())) == 6
    pids = loadtest.pids_listening_on(asgi_server.port)
    assert pids

    result = loadtest.run_scenario(
        SMOKE, world=world, keys=keys, urls=[asgi_server.ws_url], pids=pids
    )

    assert_complete(result, messages=60, per_room=3)
    assert result.backpressure == {}
    assert result.errors == {}
    assert result.closed == {}
    assert result.cpu_ms_per_1000 is not None
    assert result.cpu_ms_per_1000 > 0
    assert result.rss_mib > 0
    # The whole machine includes the server and the load generator.
    assert result.machine_cpu_pct >= result.server_cpu_pct
    table = loadtest.text_table(loadtest.result_rows([result]))
    assert "smoke" in table
    assert "liaison" in table


@pytest.mark.live_server
def test_the_baseline_server_runs_the_same_load_unthrottled(tmp_path: Path) -> None:
    pool = loadtest.ServerPool(
        "baseline", loadtest.BASELINE_APP, 1, pin=False, log_dir=tmp_path / "logs"
    )
    try:
        scenario = loadtest.Scenario(
            "max", rooms=2, per_room=3, rate=None, window=2, duration=5.0, messages=60
        )
        result = loadtest.run_scenario(
            scenario, **offline_world(6, 2), urls=pool.urls, pids=pool.pids, server="baseline"
        )
    finally:
        pool.stop()
    assert_complete(result, messages=60, per_room=3)
    assert result.server_cpu_ms > 0
    assert pool.stops
    assert pool.stops[0].startswith("exited in")


def test_workers_run_without_debug_as_production_does(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DJANGO_DEBUG", raising=False)
    env = loadtest.worker_environment("bench-prefix")
    assert env["DJANGO_DEBUG"] == "0"
    assert env["LIAISON_CHANNEL_PREFIX"] == "bench-prefix"
    assert env["LIAISON_WS_RATE_PER_10S"] == loadtest.RATE_PER_10S
    monkeypatch.setenv("DJANGO_DEBUG", "1")  # asked for: kept
    assert loadtest.worker_environment()["DJANGO_DEBUG"] == "1"
    assert loadtest.worker_environment()["LIAISON_CHANNEL_PREFIX"].startswith("loadtest-")


def offline_world(officers: int, rooms: int) -> dict[str, Any]:
    """Officers for a server that does not check sessions (the baseline, a stand-in)."""
    world = loadtest.World(
        "NONE",
        list(range(1, rooms + 1)),
        [loadtest.Officer(n, f"o{n}@loadtest.invalid") for n in range(officers)],
        "",
    )
    return {"world": world, "keys": {officer.email: "none" for officer in world.officers}}


@pytest.fixture
def pushy_server() -> Iterator[str]:
    """A stand-in room server that answers the first try of every send with backpressure
    (``unavailable`` and ``retry_after``), and stores and broadcasts the second."""
    from websockets.asyncio.server import broadcast, serve

    rooms: dict[str, set[Any]] = {}
    tried: set[str] = set()
    seq = iter(range(1, 10**6))

    async def handler(ws: Any) -> None:
        members = rooms.setdefault(ws.request.path, set())
        members.add(ws)
        try:
            async for text in ws:
                frame = json.loads(text)
                if frame["type"] == "ping":
                    await ws.send('{"type": "pong"}')
                    continue
                client_id = frame["client_id"]
                if client_id not in tried:
                    tried.add(client_id)
                    reply = {"type": "error", "code": "unavailable", "client_id": client_id}
                    await ws.send(json.dumps({**reply, "retry_after": 0.05}))
                    continue
                number = next(seq)
                await ws.send(json.dumps({"type": "message.ack", "client_id": client_id}))
                message = {"seq": number, "body": frame["body"]}
                broadcast(members, json.dumps({"type": "message.new", "message": message}))
        finally:
            members.discard(ws)

    loop = asyncio.new_event_loop()
    ready = threading.Event()
    holder: dict[str, Any] = {}

    async def main() -> None:
        async with serve(handler, "127.0.0.1", 0) as server:
            holder["port"] = server.sockets[0].getsockname()[1]
            holder["stop"] = asyncio.Event()
            ready.set()
            await holder["stop"].wait()

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    assert ready.wait(10)
    yield f"ws://127.0.0.1:{holder['port']}"
    loop.call_soon_threadsafe(holder["stop"].set)
    thread.join(10)


def test_backpressure_is_waited_out_and_the_same_message_sent_again(pushy_server: str) -> None:
    scenario = loadtest.Scenario("pushy", rooms=2, per_room=3, rate=60.0, duration=1.0, drain=10)
    result = loadtest.run_scenario(scenario, **offline_world(6, 2), urls=[pushy_server], pids=[])
    assert_complete(result, messages=60, per_room=3)
    assert result.backpressure == {"unavailable": 60}
    assert result.errors == {}


def test_several_workers_are_refused_on_the_in_memory_layer(settings: Any) -> None:
    settings.REDIS_URL = ""
    with pytest.raises(CommandError, match="in-memory layer lives inside one process"):
        loadtest.check_layer(2)
    loadtest.check_layer(1)


def test_only_loopback_servers_are_targeted() -> None:
    assert loadtest.check_loopback("ws://127.0.0.1:8000/") == "ws://127.0.0.1:8000"
    with pytest.raises(CommandError, match="loopback"):
        loadtest.check_loopback("ws://example.org:8000")


def test_percentiles_are_nearest_rank() -> None:
    values = list(range(1, 101))
    assert loadtest.percentile(values, 0.5) == 50
    assert loadtest.percentile(values, 0.99) == 99
    assert loadtest.percentile([7], 0.99) == 7
    assert math.isnan(loadtest.percentile([], 0.5))


def test_the_machine_ceiling_is_the_cores_over_what_one_worker_kept_busy() -> None:
    one_worker = loadtest.Result(
        scenario="max",
        server="liaison",
        kind="load",
        workers=1,
        rooms=10,
        per_room=10,
        sockets=100,
        offered_per_s=None,
        window=1,
        server_cpu_pct=95.0,
        client_cpu_pct=25.0,
        machine_cpu_pct=160.0,
    )
    text = loadtest.machine_ceiling(one_worker, cores=2)
    assert "160 % of the machine's 200 % busy" in text
    assert "database, Redis and the rest 40 %" in text
    assert "full at 1.25 × one worker" in text
    one_worker.machine_cpu_pct = 0.0
    assert "not measured" in loadtest.machine_ceiling(one_worker, cores=2)


def _base_run(server: str, cpu_ms_per_1000: float, *, p99: float) -> Any:
    return loadtest.Result(
        scenario="base",
        server=server,
        kind="load",
        workers=1,
        rooms=10,
        per_room=10,
        sockets=100,
        offered_per_s=200.0,
        window=1,
        delivered_pct=100.0,
        messages_per_s=200.0,
        latency_ms={"p99": p99},
        cpu_ms_per_1000=cpu_ms_per_1000,
    )


def test_goals_are_judged_on_medians_and_a_loss_in_any_repetition_fails() -> None:
    # Three interleaved repetitions: one unlucky liaison run does not decide the ratio.
    results = [
        _base_run("liaison", 260.0, p99=9.0),
        _base_run("baseline", 170.0, p99=3.0),
        _base_run("liaison", 200.0, p99=500.0),
        _base_run("baseline", 180.0, p99=3.0),
        _base_run("liaison", 210.0, p99=8.0),
        _base_run("baseline", 160.0, p99=3.0),
    ]
    rows = {row[0]: row[1:] for row in loadtest.goals(results, loadtest.compare(results))}
    cpu = rows["base load: CPU per delivery ≤ 1.5 × baseline"]
    assert cpu == ["1.24 × (210.0 vs 170.0 ms per 1,000) (median of 3)", "yes"]
    assert rows["base load, one worker: p99 ≤ 100 ms"] == ["9.0 ms (median of 3)", "yes"]
    assert rows["base load, one worker: 100 % delivered, 0 lost, 0 duplicated"][1] == "yes"

    results[2].lost = 1
    rows = {row[0]: row[1:] for row in loadtest.goals(results, loadtest.compare(results))}
    assert rows["base load, one worker: 100 % delivered, 0 lost, 0 duplicated"] == [
        "100 %, 1 lost, 0 duplicated (all 3 runs)",
        "**no**",
    ]


def test_the_machine_is_busy_for_some_time_since_boot() -> None:
    first = loadtest.machine_busy_seconds()
    sum(range(2_000_000))
    assert loadtest.machine_busy_seconds() >= first > 0


def test_workers_run_under_daphne_as_in_production_or_under_uvicorn_to_compare(
    settings: Any,
) -> None:
    settings.LIAISON_WS_PING_SECONDS = 45
    daphne = loadtest.server_command("daphne", 8001, "config.asgi:application", "65536")
    assert daphne[1:3] == ["-m", "daphne"]
    assert daphne[daphne.index("--websocket-max-frame-size") + 1] == "65536"
    uvicorn = loadtest.server_command("uvicorn", 8001, "config.asgi:application", "65536")
    assert uvicorn[1:3] == ["-m", "uvicorn"]
    assert uvicorn[uvicorn.index("--ws-max-size") + 1] == "65536"
    assert uvicorn[uvicorn.index("--ws-ping-interval") + 1] == "45"
    assert uvicorn[-1] == "config.asgi:application"


def test_an_unknown_server_is_refused_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(CommandError, match="one of daphne, uvicorn"):
        loadtest.check_server("gunicorn")
    assert loadtest.check_server("daphne") == "daphne"
    monkeypatch.setattr(loadtest.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(CommandError, match="uvicorn is not installed"):
        loadtest.check_server("uvicorn")


def test_idle_sockets_are_watched_for_a_whole_ping_interval(settings: Any) -> None:
    from liaison.realtime.server import SWEEP_SECONDS

    settings.LIAISON_WS_PING_SECONDS = 45
    # Every socket is pinged once in the window: the first pings come one interval (and at
    # most one sweep) after the connects.
    assert loadtest.idle_seconds() == 45 + SWEEP_SECONDS
    assert loadtest.IDLE.idle_seconds >= 45


def test_the_machine_says_how_fast_it_ran() -> None:
    assert loadtest.python_speed_ms(rounds=1) > 0
