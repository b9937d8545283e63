"""Whose session a socket's cookie names, learnt before its grant is read.

A room socket joins its person's group (``user.<id>``) before its grant is read, so that no
change committed after that read is missed; the person comes from the session key. Each
process remembers the owners admissions found (a key never changes hands: signing in issues a
new one), and the sockets of one person opening together (a browser restoring its tabs,
everyone reconnecting after a restart) wait on one read instead of one each: in a storm of
1,000 connects by 100 people those reads had been 9 % of the server's CPU. The owner only picks
the group; the grant's own read checks that the session is still that person's.
"""

from __future__ import annotations

import asyncio

from liaison.models import UserSession
from liaison.realtime import db
from liaison.realtime.standing import MAX_SESSION_KEY_CHARS

_known: dict[str, int] = {}
MAX_KNOWN = 20_000
# Reads under way, per event loop and session key.
_lookups: dict[tuple[asyncio.AbstractEventLoop, str], asyncio.Future[int | None]] = {}


def known(session_key: str | None) -> int | None:
    return _known.get(session_key) if session_key else None


def remember(session_key: str, user_id: int) -> None:
    if len(_known) >= MAX_KNOWN:
        _known.clear()
    _known[session_key] = user_id


def read_owner(*, session_key: str | None) -> int | None:
    """Whose open session this is (``None``: none by that key); a database thread's call."""
    if not session_key or len(session_key) > MAX_SESSION_KEY_CHARS:
        return None
    rows = UserSession.objects.filter(session_key=session_key, ended_at__isnull=True)
    owner = rows.values_list("user_id", flat=True).first()
    if owner is not None:
        remember(session_key, owner)
    return owner


async def owner_of(session_key: str | None) -> int | None:
    """Whose session this is, from this process's memory or one database read at a time."""
    owner = known(session_key)
    if owner is not None or not session_key:
        return owner
    key = (asyncio.get_running_loop(), session_key)
    lookup = _lookups.get(key)
    if lookup is None:
        lookup = asyncio.ensure_future(db.call(read_owner, session_key=session_key))
        _lookups[key] = lookup
        lookup.add_done_callback(lambda _: _lookups.pop(key, None))
    return await asyncio.shield(lookup)
