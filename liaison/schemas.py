"""Request and frame schemas: every shape a client sends, declared once (as Zulip's
``event_types.py`` declares its events).

Shapes are checked here, once, at the edge (the room socket and the HTTP views), strictly: an
integer is a JSON integer (not a string, a float or a boolean), unknown fields are refused. The
services keep the domain's rules (body cleaning and length, the ``client_id`` pattern, how many
attachments, a ``reply_to`` inside the room). A refusal is an ``Invalid`` whose detail is one
sentence naming the field, derived from the declaration itself.
"""

from __future__ import annotations

import functools
import json
from typing import Annotated, Any, Literal, TypeVar, get_args

from django.utils.translation import gettext as _
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from liaison.errors import Invalid

# The largest value the database's seq and id columns hold (PositiveBigIntegerField,
# BigAutoField): a larger number could never match, and would overflow the query.
DB_INT_MAX = 2**63 - 1

Seq = Annotated[int, Field(ge=1, le=DB_INT_MAX)]
# A seq or 0, "before the first message": a sync cursor, a read marker.
Position = Annotated[int, Field(ge=0, le=DB_INT_MAX)]
RecordId = Annotated[int, Field(ge=1, le=DB_INT_MAX)]
# A page size; the services cap it (selectors.HISTORY_MAX_LIMIT).
Count = Annotated[int, Field(ge=1, le=DB_INT_MAX)]


class Schema(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


# --- shapes shared by the socket and HTTP -------------------------------------------------------


# An agency's code, as ``@agency`` mentions and acknowledgement requests name it.
AgencyCode = Annotated[str, Field(min_length=1, max_length=32)]
# A handling marking of the exercise (``OFFICIAL``, ``OFFICIAL-SENSITIVE``, ...).
Marking = Annotated[str, Field(min_length=1, max_length=40)]
# How long addressees have to acknowledge before the request is overdue: up to a week.
DueMinutes = Annotated[int, Field(ge=1, le=7 * 24 * 60)]


class MentionSpec(Schema):
    """Who a message mentions, as the composer resolved it: people by user id, agencies by
    code, and ``room`` for everyone in the room. The service refuses anyone not a member."""

    users: Annotated[list[RecordId], Field(max_length=50)] = []
    agencies: Annotated[list[AgencyCode], Field(max_length=20)] = []
    room: bool = False


class AckSpec(Schema):
    """An acknowledgement request: from the named agencies and people, or (both empty) from
    everyone who may post in the room; overdue after ``due_minutes`` (default 60)."""

    agencies: Annotated[list[AgencyCode], Field(max_length=20)] = []
    users: Annotated[list[RecordId], Field(max_length=50)] = []
    due_minutes: DueMinutes | None = None


class MessageDraft(Schema):
    """A new message: the ``message.send`` frame and ``POST /api/v1/rooms/<id>/messages``."""

    client_id: str
    body: str
    reply_to: Seq | None = None
    attachments: list[RecordId] | None = None
    kind: Literal["text", "alert"] = "text"
    mentions: MentionSpec | None = None
    ack: AckSpec | None = None
    marking: Marking | None = None


class ExerciseMarkings(Schema):
    """``PUT /api/v1/exercises/<id>/markings``: the handling markings, lowest first, the default,
    and the highest one observers may download (empty: no limit)."""

    markings: Annotated[list[Marking], Field(min_length=1, max_length=10)]
    default: Marking
    observer_download_limit: Annotated[str, Field(max_length=40)] = ""


class ReactionChange(Schema):
    """``POST /api/v1/rooms/<id>/messages/<seq>/reactions``: set (``on``) or clear one."""

    emoji: Annotated[str, Field(min_length=1, max_length=8)]
    on: bool = True


class RoomPreferences(Schema):
    """``POST /api/v1/rooms/<id>/preferences``: mute the room, or be notified of every
    message in it (either may be left out)."""

    muted: bool | None = None
    notify_all: bool | None = None


class ReadPosition(Schema):
    """The reader's marker: the ``read`` frame and ``POST /api/v1/rooms/<id>/read``."""

    seq: Position


# --- exercise data exchange (docs/api/exchange.md) -----------------------------------------------

# The weight tolerance is a fraction of the export's net mass (0.05 is 5 %).
Tolerance = Annotated[float, Field(ge=0, le=1)]


class ListComparisonRequest(Schema):
    """``POST /api/v1/exercises/<id>/list-comparisons``: two list data sets."""

    allowed: RecordId
    prohibited: RecordId


class MirrorComparisonRequest(Schema):
    """``POST /api/v1/exercises/<id>/comparisons``: exports against imports."""

    exports: RecordId
    imports: RecordId
    prohibited: RecordId | None = None
    weight_tolerance: Tolerance | None = None
    hs_digits: Literal[2, 4, 6, 8, 10] | None = None


class HandoverRequest(Schema):
    """``POST /api/v1/comparisons/<id>/handover``: the departments receiving the package."""

    recipient: Annotated[str, Field(min_length=1, max_length=200)]


class SeizureReportDraft(Schema):
    """``POST /api/v1/rooms/<id>/reports``: a seizure report (the service checks the values:
    the date, a container's check digit, the HS code, the unit, the lengths)."""

    client_id: str
    date: str
    place: str
    commodity: str
    quantity: Annotated[float, Field(gt=0, le=1e12)]
    unit: str
    container_no: str = ""
    hs_code: str = ""
    concealment: str = ""
    agencies: Annotated[list[Annotated[str, Field(max_length=100)]], Field(max_length=10)] = []
    notes: str = ""


column_mapping: TypeAdapter[dict[str, str]] = TypeAdapter(
    dict[Annotated[str, Field(max_length=40)], Annotated[str, Field(max_length=200)]],
    config=ConfigDict(strict=True),
)


def parse_column_mapping(text: str) -> dict[str, str]:
    """The ``columns`` field of a data set upload: a JSON object naming, for each field, the
    file's header to read it from (``{"container_no": "Box"}``)."""
    if not text:
        return {}
    try:
        data = json.loads(text)
        mapping = column_mapping.validate_python(data)
    except (ValueError, ValidationError):
        raise Invalid(
            _("Field 'columns' must be a JSON object of field names and column headers."),
            field="columns",
        ) from None
    if len(mapping) > 20:
        raise Invalid(_("Field 'columns' names too many fields."), field="columns")
    return mapping


# --- client frames of the room socket (docs/api/websocket.md) -----------------------------------


class MessageSendFrame(MessageDraft):
    type: Literal["message.send"]


class MessageEditFrame(Schema):
    type: Literal["message.edit"]
    seq: Seq
    body: str


class MessageDeleteFrame(Schema):
    type: Literal["message.delete"]
    seq: Seq


class SyncFrame(Schema):
    type: Literal["sync"]
    after_seq: Position


class HistoryFrame(Schema):
    type: Literal["history"]
    before_seq: Seq | None = None
    limit: Count | None = None


class TypingFrame(Schema):
    type: Literal["typing"]


class ReadFrame(ReadPosition):
    type: Literal["read"]


class PingFrame(Schema):
    type: Literal["ping"]


class AckFrame(Schema):
    type: Literal["ack"]
    seq: Seq


ClientFrame = Annotated[
    MessageSendFrame
    | MessageEditFrame
    | MessageDeleteFrame
    | SyncFrame
    | HistoryFrame
    | TypingFrame
    | ReadFrame
    | PingFrame
    | AckFrame,
    Field(discriminator="type"),
]
client_frame: TypeAdapter[ClientFrame] = TypeAdapter(ClientFrame)

# The schema of each frame type, to name what is wrong with a frame.
FRAME_SCHEMAS: dict[str, type[Schema]] = {
    get_args(schema.model_fields["type"].annotation)[0]: schema
    for schema in (
        MessageSendFrame,
        MessageEditFrame,
        MessageDeleteFrame,
        SyncFrame,
        HistoryFrame,
        TypingFrame,
        ReadFrame,
        PingFrame,
        AckFrame,
    )
}


# --- checking ------------------------------------------------------------------------------------

S = TypeVar("S", bound=Schema)


def parse(schema: type[S], data: object) -> S:
    """An HTTP body as ``schema``, or ``Invalid`` naming the first field that is wrong."""
    try:
        return schema.model_validate(data)
    except ValidationError as error:
        raise refusal(error, schema) from None


def parse_frame(data: object) -> Schema:
    """A client frame as its schema, or ``Invalid`` saying what is wrong with it."""
    if not isinstance(data, dict):
        raise Invalid(_("A frame must be a JSON object with a 'type'."))
    kind = data.get("type")
    if not isinstance(kind, str):
        raise Invalid(_("A frame must have a string 'type'."))
    try:
        return client_frame.validate_python(data)
    except ValidationError as error:
        schema = FRAME_SCHEMAS.get(kind)
        if schema is None:
            raise Invalid(_("Unknown frame type %(kind)s.") % {"kind": repr(kind[:40])}) from None
        raise refusal(error, schema, frame=kind) from None


def refusal(error: ValidationError, schema: type[Schema], *, frame: str | None = None) -> Invalid:
    """One sentence for the first problem (an unknown field first, as a client most likely
    misspelt it), in the reader's language."""
    problems = error.errors(include_url=False, include_input=False)
    problem = next((p for p in problems if p["type"] == "extra_forbidden"), problems[0])
    loc = list(problem["loc"])
    if frame is not None and loc and loc[0] == frame:
        loc = loc[1:]  # the discriminated union puts the frame's type first
    if not loc:
        return Invalid(_("The request body must be a JSON object."))
    name = str(loc[0])[:40]
    if problem["type"] == "extra_forbidden":
        if frame is not None:
            detail = _("Unknown field '%(value)s' in a %(kind)s frame.") % {
                "value": name,
                "kind": frame,
            }
        else:
            detail = _("Unknown field '%(value)s'.") % {"value": name}
        return Invalid(detail, field=name)
    if problem["type"] == "missing":
        return Invalid(_("Field '%(name)s' is required.") % {"name": name}, field=name)
    prop = _properties(schema).get(name, {})
    return Invalid(
        _expectation(name, prop, too_large=problem["type"] == "less_than_equal"), field=name
    )


@functools.cache
def _properties(schema: type[Schema]) -> dict[str, Any]:
    return schema.model_json_schema()["properties"]


def _expectation(name: str, prop: dict[str, Any], *, too_large: bool) -> str:
    """What the field must be, read from its JSON schema (the declaration above)."""
    options = prop.get("anyOf", [prop])
    nullable = any(option.get("type") == "null" for option in options)
    shape = next((option for option in options if option.get("type") != "null"), {})
    values: dict[str, object] = {"name": name}
    if "enum" in shape:
        values["choices"] = ", ".join(json.dumps(choice) for choice in shape["enum"])
        return _("Field '%(name)s' must be one of %(choices)s.") % values
    if shape.get("type") == "integer":
        values |= {"minimum": shape["minimum"], "maximum": shape["maximum"]}
        if too_large:
            return _("Field '%(name)s' must be an integer of at most %(maximum)s.") % values
        if nullable:
            return (
                _("Field '%(name)s' must be null or an integer of at least %(minimum)s.") % values
            )
        return _("Field '%(name)s' must be an integer of at least %(minimum)s.") % values
    if shape.get("type") == "array" and shape.get("items", {}).get("type") == "integer":
        values |= {"minimum": shape["items"]["minimum"], "maximum": shape["items"]["maximum"]}
        if too_large:
            return _("Field '%(name)s' must be a list of integers of at most %(maximum)s.") % values
        if nullable:
            return (
                _("Field '%(name)s' must be null or a list of integers of at least %(minimum)s.")
                % values
            )
        return _("Field '%(name)s' must be a list of integers of at least %(minimum)s.") % values
    if shape.get("type") == "number" and "minimum" in shape and "maximum" in shape:
        values |= {"minimum": shape["minimum"], "maximum": shape["maximum"]}
        if nullable:
            return (
                _("Field '%(name)s' must be null or a number from %(minimum)s to %(maximum)s.")
                % values
            )
        return _("Field '%(name)s' must be a number from %(minimum)s to %(maximum)s.") % values
    if shape.get("type") == "string":
        return _("Field '%(name)s' must be a string.") % values
    return _("Field '%(name)s' has the wrong type.") % values
