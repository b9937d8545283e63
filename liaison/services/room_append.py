"""Appending a message to a room with SQL built once per process.

A send is the busiest write there is. Profiled under load, compiling the ORM's
``select_for_update().select_related("exercise")`` and ``Message.objects.create`` cost more CPU
than PostgreSQL spent running them, and reading the newest key took a round trip of its own.
Here the room row comes back locked with everything the append reads (one statement), then the
message goes in and the room's head moves (one statement on PostgreSQL, two elsewhere).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from django.db import connection
from django.db.models import Field, Model

from liaison import metrics
from liaison.models import Exercise, Message, Room, RoomKey


def _in_model_order(model: type[Model], names: set[str]) -> tuple[str, ...]:
    """``Model.from_db`` takes a subset of fields in the model's own order."""
    return tuple(f.attname for f in model._meta.concrete_fields if f.attname in names)


# What a send reads of each row; any other field loads on first use, like ``.only()``.
ROOM_FIELDS = _in_model_order(
    Room, {"id", "exercise_id", "name", "title", "last_seq", "chain_head", "access_epoch"}
)
EXERCISE_FIELDS = _in_model_order(
    Exercise, {"id", "code", "markings", "default_marking", "history_visibility"}
)


@dataclass(frozen=True)
class RoomForAppend:
    room: Room  # ``room.exercise`` is loaded too
    key_version: int | None  # the newest data key's version; None before the first message
    key_shredded: bool  # the newest key was destroyed: the room takes no new content


@functools.cache
def _sql(vendor: str, locks: bool) -> str:
    # ``vendor`` keys the cache: identifiers are quoted the database's way.
    quote = connection.ops.quote_name
    room, exercise, key = Room._meta, Exercise._meta, RoomKey._meta
    room_columns = [f"r.{quote(room.get_field(name).column)}" for name in ROOM_FIELDS]
    exercise_columns = [f"e.{quote(exercise.get_field(name).column)}" for name in EXERCISE_FIELDS]
    keys = (
        f"FROM {quote(key.db_table)} k WHERE k.{quote(key.get_field('room').column)} = r."
        f"{quote(room.pk.column)} ORDER BY k.{quote(key.get_field('version').column)} DESC LIMIT 1"
    )
    version = quote(key.get_field("version").column)
    wrapped = quote(key.get_field("wrapped_key").column)
    # Identifiers from the models' metadata only; the one value is a parameter.
    return (
        f"SELECT {', '.join(room_columns + exercise_columns)}, "  # noqa: S608
        f"(SELECT k.{version} {keys}), (SELECT k.{wrapped} IS NULL {keys}) "
        f"FROM {quote(room.db_table)} r JOIN {quote(exercise.db_table)} e "
        f"ON e.{quote(exercise.pk.column)} = r.{quote(room.get_field('exercise').column)} "
        f"WHERE r.{quote(room.pk.column)} = %s" + (" FOR UPDATE OF r" if locks else "")
    )


def lock_room_for_append(room_id: int) -> RoomForAppend | None:
    """The room locked until the transaction ends (its row is the per-room order: ``seq`` and
    the chain head move together under it), or ``None`` if there is no such room.

    The exercise row is read, not locked, so rooms of one exercise do not queue on it. Call
    inside ``transaction.atomic()``; on SQLite the immediate transaction is the lock.
    """
    sql = _sql(connection.vendor, connection.features.has_select_for_update_of)
    with connection.cursor() as cursor:
        cursor.execute(sql, [room_id])
        row = cursor.fetchone()
    if row is None:
        return None
    width = len(ROOM_FIELDS)
    room_values = row[:width]
    exercise_values = list(row[width : width + len(EXERCISE_FIELDS)])
    markings = Exercise._meta.get_field("markings")
    index = EXERCISE_FIELDS.index("markings")
    exercise_values[index] = markings.from_db_value(exercise_values[index], None, connection)
    room = Room.from_db(connection.alias, ROOM_FIELDS, room_values)
    room.exercise = Exercise.from_db(connection.alias, EXERCISE_FIELDS, exercise_values)
    key_version, key_shredded = row[-2], row[-1]
    return RoomForAppend(
        room=room,
        key_version=key_version,
        key_shredded=bool(key_shredded) if key_version is not None else False,
    )


@functools.cache
def _insert_fields() -> tuple[Field, ...]:
    """Every column but the id, in one order for the SQL and the values (once per process)."""
    return tuple(f for f in Message._meta.concrete_fields if not f.primary_key)


@functools.cache
def _append_sql(vendor: str, returns: bool) -> tuple[str, ...]:
    """The statements that store a message and move its room's head: one on PostgreSQL (a
    data-modifying WITH runs both in one round trip), two elsewhere."""
    quote = connection.ops.quote_name
    message, room = Message._meta, Room._meta
    columns = ", ".join(quote(f.column) for f in _insert_fields())
    places = ", ".join(["%s"] * len(_insert_fields()))
    insert = f"INSERT INTO {quote(message.db_table)} ({columns}) VALUES ({places})"  # noqa: S608
    returning = f" RETURNING {quote(message.pk.column)}" if returns else ""
    update = (
        f"UPDATE {quote(room.db_table)} SET {quote(room.get_field('last_seq').column)} = %s, "  # noqa: S608
        f"{quote(room.get_field('chain_head').column)} = %s WHERE {quote(room.pk.column)} = %s"
    )
    if vendor == "postgresql":
        return (
            f"WITH appended AS ({insert}{returning}), moved AS ({update}) "  # noqa: S608
            f"SELECT {quote(message.pk.column)} FROM appended",
        )
    return (insert + returning, update)


def append_message(message: Message) -> None:
    """Store a new message built in memory, as ``save()`` would (each field prepared for the
    database by its own field class), set its id, and move its room's ``seq`` and chain head to
    it. Call with the room locked (``lock_room_for_append``). A resent ``client_id`` raises
    ``IntegrityError`` from the unique constraint, as with the ORM."""
    returns = connection.features.can_return_columns_from_insert
    values = [f.get_db_prep_save(f.pre_save(message, True), connection) for f in _insert_fields()]
    head = [message.seq, message.chain_hash, message.room_id]
    statements = _append_sql(connection.vendor, returns)
    with connection.cursor() as cursor:
        if len(statements) == 1:
            cursor.execute(statements[0], values + head)
            message.pk = cursor.fetchone()[0]
        else:
            insert, update = statements
            cursor.execute(insert, values)
            message.pk = cursor.fetchone()[0] if returns else cursor.lastrowid
            cursor.execute(update, head)
    message._state.adding = False
    message._state.db = connection.alias
    metrics.message_stored()
