"""A socket's standing, read in one statement: its session, the person, and their place in the
room.

Admitting a socket used to take nine statements through the ORM (the session, the tracked
session with the person, the second-factor device, the room, the membership, then presence),
after Channels' ``AuthMiddleware`` had read the session and the person once already on its own
thread. Profiled in a connect storm, compiling those queries cost more than PostgreSQL spent
running them. Here one statement, built once per process, brings every row a grant is decided
from; the rules themselves stay where they are (``sessions.socket_session_problem_of``,
``access.room_access_of``), so a socket and a page decide alike.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.contrib.sessions.models import Session
from django.db import connection
from django.db.models import Model
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from liaison.models import Agency, Exercise, Membership, Room, User, UserSession
from liaison.services import sessions

# Session keys are 32 characters; anything longer is no key of ours and is not looked up.
MAX_SESSION_KEY_CHARS = 64

# (alias, model) in the order their columns come back; the alias is the table's in the SQL.
_ROWS: tuple[tuple[str, type[Model]], ...] = (
    ("us", UserSession),
    ("u", User),
    ("a", Agency),
    ("r", Room),
    ("e", Exercise),
    ("m", Membership),
)


@dataclass
class Standing:
    """What the database holds about one socket's session and room; ``None`` where there is no
    such row (no session, no such room, not a member)."""

    session_data: dict[str, Any]  # empty: no session, or it has expired
    tracked: UserSession | None  # with ``tracked.user`` and the person's agency loaded
    room: Room | None  # with ``room.exercise`` loaded
    membership: Membership | None  # the person's current membership of the room's exercise
    confirmed_totp_ids: set[int] = field(default_factory=set)

    @property
    def user(self) -> User | None:
        return self.tracked.user if self.tracked is not None else None

    def session_problem(self, user_id: int | None) -> str | None:
        """The session rule (``sessions.socket_session_problem_of``) on these rows: ``None`` if
        the session is good for ``user_id`` (``None``: whoever it belongs to)."""
        return sessions.socket_session_problem_of(
            data=self.session_data,
            row=self.tracked,
            user_id=user_id,
            confirmed_totp_ids=self.confirmed_totp_ids,
        )


def _sessions_in_database() -> bool:
    return settings.SESSION_ENGINE == "django.contrib.sessions.backends.db"


@dataclass(frozen=True)
class _Statement:
    sql: str
    # Per model: its field names and, per column, the converters Django's compiler would apply
    # (SQLite hands back datetimes as naive strings, JSON as text).
    columns: tuple[tuple[tuple[str, ...], tuple[tuple[Callable[..., Any], ...], ...]], ...]


def _converters(model: type[Model], alias: str) -> tuple[tuple[Callable[..., Any], ...], ...]:
    out = []
    for f in model._meta.concrete_fields:
        column = f.get_col(alias)
        out.append(
            tuple(connection.ops.get_db_converters(column) + column.get_db_converters(connection))
        )
    return tuple(out)


@functools.cache
def _statement(vendor: str, sessions_in_database: bool) -> _Statement:
    # ``vendor`` keys the cache: identifiers are quoted the database's way.
    quote = connection.ops.quote_name

    def table(model: type[Model]) -> str:
        return quote(model._meta.db_table)

    def col(alias: str, model: type[Model], name: str) -> str:
        return f"{alias}.{quote(model._meta.get_field(name).column)}"

    selected = []
    columns = []
    for alias, model in _ROWS:
        selected += [f"{alias}.{quote(f.column)}" for f in model._meta.concrete_fields]
        columns.append(
            (tuple(f.attname for f in model._meta.concrete_fields), _converters(model, alias))
        )
    session_columns = "NULL, NULL"
    session_join = ""
    if sessions_in_database:
        session_columns = f"{col('s', Session, 'session_data')}, {col('s', Session, 'expire_date')}"
        session_join = (
            f"LEFT JOIN {table(Session)} s ON {col('s', Session, 'session_key')} = p.k "
            f"AND {col('s', Session, 'expire_date')} > %s "
        )
    # Identifiers from the models' metadata only; the values are parameters.
    sql = (
        f"SELECT {session_columns}, {', '.join(selected)}, {col('d', TOTPDevice, 'id')} "  # noqa: S608
        "FROM (SELECT CAST(%s AS varchar(64)) AS k, CAST(%s AS bigint) AS rid) p "
        f"{session_join}"
        f"LEFT JOIN {table(UserSession)} us ON {col('us', UserSession, 'session_key')} = p.k "
        f"LEFT JOIN {table(User)} u ON {col('u', User, 'id')} = {col('us', UserSession, 'user')} "
        f"LEFT JOIN {table(Agency)} a ON {col('a', Agency, 'id')} = {col('u', User, 'agency')} "
        f"LEFT JOIN {table(Room)} r ON {col('r', Room, 'id')} = p.rid "
        f"LEFT JOIN {table(Exercise)} e ON {col('e', Exercise, 'id')} = {col('r', Room, 'exercise')} "
        f"LEFT JOIN {table(Membership)} m ON {col('m', Membership, 'exercise')} = "
        f"{col('r', Room, 'exercise')} AND {col('m', Membership, 'user')} = {col('u', User, 'id')} "
        f"AND {col('m', Membership, 'removed_at')} IS NULL "
        f"LEFT JOIN {table(TOTPDevice)} d ON {col('d', TOTPDevice, 'user')} = {col('u', User, 'id')} "
        f"AND {col('d', TOTPDevice, 'confirmed')} = %s"
    )
    return _Statement(sql=sql, columns=tuple(columns))


def _instance(
    model: type[Model],
    names: tuple[str, ...],
    converters: tuple[tuple[Callable[..., Any], ...], ...],
    values: Sequence[Any],
) -> Model | None:
    if values[0] is None:  # the primary key: no such row (a LEFT JOIN's nulls)
        return None
    converted = []
    for value, functions in zip(values, converters, strict=True):
        for convert in functions:
            value = convert(value, None, connection)
        converted.append(value)
    return model.from_db(connection.alias, names, converted)


def read_standing(*, session_key: str | None, room_id: int | None) -> Standing:
    """The session, the person and their agency, the room and its exercise, the membership and
    the confirmed authenticator devices, in one statement (``room_id`` ``None``: no room)."""
    if not session_key or len(session_key) > MAX_SESSION_KEY_CHARS:
        return Standing(session_data={}, tracked=None, room=None, membership=None)
    in_database = _sessions_in_database()
    statement = _statement(connection.vendor, in_database)
    params: list[Any] = [session_key, room_id]
    if in_database:
        params.append(timezone.now())
    params.append(True)
    with connection.cursor() as cursor:
        cursor.execute(statement.sql, params)
        rows = cursor.fetchall()
    first = rows[0]  # the parameters' row always comes back, joined or not
    instances: list[Model | None] = []
    offset = 2
    for (_alias, model), (names, converters) in zip(_ROWS, statement.columns, strict=True):
        width = len(names)
        instances.append(_instance(model, names, converters, first[offset : offset + width]))
        offset += width
    tracked, user, agency, room, exercise, membership = instances
    if in_database:
        session_data = sessions.decode_session(session_key, first[0]) if first[0] else {}
    else:
        session_data = sessions.session_store(session_key).load()
    if tracked is not None and user is not None:
        user.agency = agency  # type: ignore[attr-defined]
        tracked.user = user  # type: ignore[attr-defined]
    else:
        tracked = None
    if room is not None:
        room.exercise = exercise  # type: ignore[attr-defined]
        if membership is not None:
            membership.exercise = exercise  # type: ignore[attr-defined]
    return Standing(
        session_data=session_data,
        tracked=tracked,  # type: ignore[arg-type]
        room=room,  # type: ignore[arg-type]
        membership=membership,  # type: ignore[arg-type]
        confirmed_totp_ids={row[-1] for row in rows if row[-1] is not None},
    )
