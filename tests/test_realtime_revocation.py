"""Revocation that cannot leak, through real daphne workers on PostgreSQL and Redis, with a
member sending all the while.

What counts as a leak: a frame about a message committed after the change. The change locks
the room row, which every send takes too, so the room's ``last_seq`` read under that lock is
the cut: a message above it was committed after the change (a removal records the cut in its
audit event; the account changes here run under a room lock the test holds).
"""

from __future__ import annotations

import asyncio
import io
import time
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.core.management import call_command
from django.db import transaction
from django.test import Client

from liaison.models import Agency, AuditEvent, GroupRole, Membership, Room, User
from liaison.services import accounts, memberships, sessions
from tests.conftest import sign_in
from tests.factories import MembershipFactory, UserFactory
from tests.realtime_support import (
    Recorder,
    Sender,
    Workers,
    needs_shared_layer,
    open_socket,
)

pytestmark = [pytest.mark.live_server, pytest.mark.django_db(transaction=True)]

REMOVALS = 100


def _removal_cut(user: User, room: Room) -> int:
    """The room's last seq when the user's latest removal committed (its audit event)."""
    rows = AuditEvent.objects.filter(action="membership.removed").order_by("-seq")
    removal = next(row for row in rows if row.details.get("user_id") == user.pk)
    return removal.details["last_seq_by_room"][str(room.pk)]


def _leaks(recorder: Recorder, cut: int) -> list[int]:
    return [message["seq"] for message in recorder.messages() if message["seq"] > cut]


def _change_at_cut(room: Room, change: Any, *args: Any) -> int:
    """Run an account change while holding the room's row lock from before it to its commit:
    every send waits, so the room's last seq read first is the exact cut."""
    with transaction.atomic():
        cut = Room.objects.select_for_update().get(pk=room.pk).last_seq
        change(*args)
    return cut


def _readd(admin: User, exercise_id: int, user: User) -> None:
    memberships.add_member(
        actor=admin,
        exercise=Membership.objects.filter(exercise_id=exercise_id).first().exercise,
        user=user,
        role=GroupRole.MEMBER,
    )


LANES = 10


def _lane_officers(room: Room, agency: Agency, count: int) -> list[User]:
    exercise = room.exercise
    officers = []
    for index in range(count):
        officer = UserFactory(
            email=f"lane{index}@hmrc.example", display_name=f"Lane {index}", agency=agency
        )
        MembershipFactory(exercise=exercise, user=officer, role=GroupRole.MEMBER)
        officers.append(officer)
    return officers


async def test_no_message_committed_after_a_removal_reaches_the_removed_officer(
    workers: Workers, ws_headers: Any, admin: User, gz_officer: User, room: Room, hmrc: Agency
) -> None:
    """100 removals, half through the API and half through ``manage.py members remove``,
    ten officers at a time, while another member keeps sending."""
    needs_shared_layer()
    worker = workers.start()
    officers = await database_sync_to_async(_lane_officers)(room, hmrc, LANES)
    sender = Sender(await open_socket(worker, ws_headers, gz_officer, room)).start()
    admin_client = await database_sync_to_async(sign_in)(Client(), admin)
    leaks: dict[str, list[int]] = {}
    slow: list[float] = []

    async def remove(officer: User, attempt: int) -> None:
        if attempt % 2:
            await database_sync_to_async(call_command)(
                "members",
                "remove",
                "--exercise",
                room.exercise.code,
                "--email",
                officer.email,
                stdout=io.StringIO(),
            )
        else:
            response = await database_sync_to_async(admin_client.delete)(
                f"/api/v1/exercises/{room.exercise_id}/members/{officer.pk}"
            )
            assert response.status_code == 200, response.content

    async def lane(officer: User) -> None:
        for attempt in range(REMOVALS // LANES):
            if attempt:
                await database_sync_to_async(_readd)(admin, room.exercise_id, officer)
            recorder = Recorder(await open_socket(worker, ws_headers, officer, room)).start()
            await recorder.wait_for("presence", timeout=10)
            await asyncio.sleep(0.03)  # messages are flowing to the socket
            await remove(officer, attempt)
            removed_at = time.monotonic()
            cut = await database_sync_to_async(_removal_cut)(officer, room)
            assert await recorder.wait_closed(timeout=5) == 4403
            slow.append(recorder.closed_at - removed_at)
            await asyncio.sleep(0.02)  # let anything in flight land before judging
            found = _leaks(recorder, cut)
            if found:
                leaks[f"{officer.email}#{attempt}"] = found

    try:
        await asyncio.gather(*(lane(officer) for officer in officers))
    finally:
        await sender.stop()
    assert len(slow) == REMOVALS
    assert sender.acked, "the concurrent sender must have been sending"
    assert leaks == {}
    assert max(slow) < 1.0, f"slowest close after removal: {max(slow):.3f}s"


def _disable(user: User) -> None:
    user.is_active = False
    user.save()


def _set_password(user: User) -> None:
    user.set_password("a whole new passphrase 2026")
    user.save()


def _reset_two_factor(user: User, admin: User) -> None:
    accounts.reset_two_factor(actor=admin, user=user)


def _revoke_sessions(user: User) -> None:
    with transaction.atomic():
        sessions.end_all_sessions(user=user, reason="revoked")


ACCOUNT_CHANGES = {
    "account disabled": (_disable, 4401),
    "password set": (_set_password, 4401),
    "two-factor reset": (_reset_two_factor, 4401),
    "sessions revoked": (_revoke_sessions, 4401),
}


@pytest.mark.parametrize("change", list(ACCOUNT_CHANGES))
async def test_an_account_change_closes_an_idle_socket_within_a_second_and_leaks_nothing(
    workers: Workers,
    ws_headers: Any,
    admin: User,
    uk_officer: User,
    gz_officer: User,
    room: Room,
    change: str,
) -> None:
    needs_shared_layer()
    action, code = ACCOUNT_CHANGES[change]
    worker = workers.start()
    sender = Sender(await open_socket(worker, ws_headers, gz_officer, room)).start()
    recorder = Recorder(await open_socket(worker, ws_headers, uk_officer, room)).start()
    await recorder.wait_for("presence", timeout=10)
    await asyncio.sleep(0.05)
    user = await database_sync_to_async(User.objects.get)(pk=uk_officer.pk)
    args = (user, admin) if action is _reset_two_factor else (user,)
    changed_at = time.monotonic()
    cut = await database_sync_to_async(_change_at_cut)(room, action, *args)
    try:
        assert await recorder.wait_closed(timeout=5) == code
        assert recorder.closed_at - changed_at < 1.0
        await asyncio.sleep(0.02)
        assert _leaks(recorder, cut) == []
    finally:
        await sender.stop()


async def test_a_member_made_observer_stays_but_can_no_longer_post(
    workers: Workers, ws_headers: Any, admin: User, uk_officer: User, room: Room
) -> None:
    needs_shared_layer()
    worker = workers.start()
    ws = await open_socket(worker, ws_headers, uk_officer, room)
    recorder = Recorder(ws).start()
    await recorder.wait_for("presence", timeout=10)
    membership = await database_sync_to_async(Membership.objects.get)(
        user=uk_officer, exercise_id=room.exercise_id
    )
    await database_sync_to_async(memberships.change_role)(
        actor=admin, membership=membership, role=GroupRole.OBSERVER
    )
    await asyncio.sleep(0.2)
    await ws.send('{"type": "message.send", "client_id": "obs-1", "body": "may I?"}')
    error = await recorder.wait_for("error", timeout=5)
    assert error["code"] == "forbidden"
    assert recorder.close_code is None
    await ws.close()
