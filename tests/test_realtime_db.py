"""The seam between the sockets' event loop and the database: calls run on the pool's threads,
keep their connection from call to call, and give it up only when it is spoiled or too old."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest
from channels.layers import get_channel_layer
from django.db import DatabaseError, connection
from django.db.backends.signals import connection_created

from liaison import events
from liaison.realtime import db

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> Any:
    """How many database connections were opened meanwhile (connections persist for a
    minute, as production's do)."""
    monkeypatch.setitem(connection.settings_dict, "CONN_MAX_AGE", 60)
    count: list[int] = []

    def created(sender: Any, connection: Any, **kwargs: Any) -> None:
        count.append(1)

    connection_created.connect(created)
    yield count
    connection_created.disconnect(created)


@pytest.fixture
def one_thread(settings: Any) -> None:
    """Follow one connection from call to call: with several threads the pool may start a new
    one for the next call before the last has counted itself idle."""
    settings.LIAISON_REALTIME_DB_THREADS = 1


def _query() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        return threading.get_ident()


def _fail() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM no_such_table_here")


def _break() -> None:
    connection.connection.close()  # the server went away under Django
    _query()


def _age_out() -> None:
    _query()
    connection.close_at = time.monotonic() - 1


async def test_calls_run_on_a_database_thread_and_keep_its_connection(opened: list[int]) -> None:
    first = await db.call(_query)
    assert first != threading.get_ident()
    for _ in range(5):
        await db.call(_query)
    assert len(opened) <= db.threads()  # one connection per thread, kept between calls


async def test_a_connection_that_survived_a_query_error_is_kept(
    opened: list[int], one_thread: None
) -> None:
    await db.call(_query)
    before = len(opened)
    with pytest.raises(DatabaseError):
        await db.call(_fail)
    await db.call(_query)
    assert len(opened) == before  # checked once, found usable


async def test_a_broken_connection_is_given_up_after_the_call_that_found_it(
    opened: list[int],
    one_thread: None,
) -> None:
    if connection.vendor == "sqlite":
        pytest.skip("an SQLite connection is a file: nothing breaks it from outside")
    await db.call(_query)
    before = len(opened)
    with pytest.raises(Exception, match="closed"):
        await db.call(_break)
    await db.call(_query)
    assert len(opened) == before + 1


async def test_a_connection_past_its_age_is_closed(opened: list[int], one_thread: None) -> None:
    await db.call(_age_out)
    before = len(opened)
    await db.call(_query)
    assert len(opened) == before + 1


async def test_events_published_in_a_call_are_sent_after_it_from_the_loop() -> None:
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add("room.1", channel)

    def publishing() -> None:
        events.publish("room.1", {"type": "room.typing"})

    result, pending, error = await db.call_quietly(publishing)
    assert (result, error) == (None, None)
    assert pending == [("room.1", {"type": "room.typing"})]
    received = asyncio.create_task(layer.receive(channel))
    await asyncio.sleep(0.2)
    assert not received.done()  # collected on the thread, not sent from it
    await events.send_pending(pending)
    assert await asyncio.wait_for(received, 2) == {"type": "room.typing"}


def _hold_a_thread() -> None:
    _query()
    time.sleep(0.05)  # long enough that the calls beside it need threads of their own


async def test_shutdown_closes_the_connection_of_every_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(connection.settings_dict, "CONN_MAX_AGE", 60)
    wrappers: list[Any] = []

    def created(sender: Any, connection: Any, **kwargs: Any) -> None:
        wrappers.append(connection)

    connection_created.connect(created)
    try:
        await asyncio.gather(*(db.call(_hold_a_thread) for _ in range(db.threads() * 2)))
    finally:
        connection_created.disconnect(created)
    assert len(wrappers) == db.threads()
    assert all(wrapper.connection is not None for wrapper in wrappers)  # kept between calls
    db.shutdown(wait=True)
    assert [wrapper.connection for wrapper in wrappers] == [None] * len(wrappers)
