"""Seizure reports: the structured message an officer posts when goods are seized.

A report is a message of kind ``report`` whose body is this module's JSON (so it is sealed,
chained, audited and delivered like any message); the chat shows it as a card, and at the end
of the operation every report of the exercise is exported as one CSV, the way CENcomm
operations hand their seizures to the CEN database.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from django.utils.translation import gettext as _

from liaison.errors import Invalid
from liaison.exchange import containers, hs_codes

BODY_TYPE = "seizure_report"
BODY_VERSION = 1
UNITS = ("kg", "t", "pieces", "packages", "containers", "m3", "l")
TEXT_LIMITS = {"place": 200, "commodity": 200, "concealment": 200, "notes": 2000}
MAX_AGENCIES = 10
AGENCY_MAX_CHARS = 100


@dataclass(frozen=True)
class SeizureReport:
    date: str  # ISO 8601 date of the seizure
    place: str
    commodity: str
    quantity: float
    unit: str
    container_no: str = ""
    hs_code: str = ""
    concealment: str = ""
    agencies: list[str] = field(default_factory=list)
    notes: str = ""

    def body(self) -> str:
        """The message body: compact JSON, read back by ``parse_body`` and the chat client."""
        document = {"type": BODY_TYPE, "v": BODY_VERSION, **asdict(self)}
        return json.dumps(document, ensure_ascii=False, separators=(",", ":"))


def _text(data: Mapping[str, Any], name: str, *, required: bool) -> str:
    value = data.get(name, "")
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise Invalid(_("Field '%(name)s' must be a string.") % {"name": name}, field=name)
    value = " ".join(value.split()) if name != "notes" else value.strip()
    if required and not value:
        raise Invalid(_("Field '%(name)s' is required.") % {"name": name}, field=name)
    limit = TEXT_LIMITS.get(name, 200)
    if len(value) > limit:
        raise Invalid(
            _("Field '%(name)s' holds at most %(limit)s characters.")
            % {"name": name, "limit": limit},
            field=name,
        )
    return value


def clean_report(data: Mapping[str, Any]) -> SeizureReport:
    """A report from what the form or the API sent, or ``Invalid`` naming the field."""
    raw_date = data.get("date")
    try:
        date = dt.date.fromisoformat(str(raw_date)).isoformat()
    except ValueError:
        raise Invalid(_("The date must be written as YYYY-MM-DD."), field="date") from None
    quantity = data.get("quantity")
    if isinstance(quantity, str):
        try:
            quantity = float(quantity.replace(",", ""))
        except ValueError:
            quantity = None
    if (
        isinstance(quantity, bool)
        or not isinstance(quantity, int | float)
        or not math.isfinite(quantity)
        or quantity <= 0
    ):
        raise Invalid(_("The quantity must be a number above 0."), field="quantity")
    unit = data.get("unit")
    if unit not in UNITS:
        raise Invalid(
            _("The unit must be one of %(units)s.") % {"units": ", ".join(UNITS)}, field="unit"
        )
    container = containers.normalise(_text(data, "container_no", required=False))
    if container and not containers.is_valid(container):
        raise Invalid(
            _("%(value)s is not a container number with a valid ISO 6346 check digit.")
            % {"value": container[:20]},
            field="container_no",
        )
    code = _text(data, "hs_code", required=False)
    digits = hs_codes.normalise(code)
    if code and not hs_codes.is_prefix(digits):
        raise Invalid(
            _("The HS code must have 2, 4, 6, 8 or 10 digits."),
            field="hs_code",
        )
    agencies = data.get("agencies") or []
    if isinstance(agencies, str):
        agencies = [part for part in (p.strip() for p in agencies.split(",")) if part]
    if (
        not isinstance(agencies, list)
        or len(agencies) > MAX_AGENCIES
        or not all(isinstance(a, str) and 0 < len(a.strip()) <= AGENCY_MAX_CHARS for a in agencies)
    ):
        raise Invalid(
            _("List at most %(count)s agencies, each a name of up to %(chars)s characters.")
            % {"count": MAX_AGENCIES, "chars": AGENCY_MAX_CHARS},
            field="agencies",
        )
    return SeizureReport(
        date=date,
        place=_text(data, "place", required=True),
        commodity=_text(data, "commodity", required=True),
        quantity=float(quantity),
        unit=str(unit),
        container_no=container,
        hs_code=digits,
        concealment=_text(data, "concealment", required=False),
        agencies=[" ".join(a.split()) for a in agencies],
        notes=_text(data, "notes", required=False),
    )


def parse_body(text: str) -> SeizureReport | None:
    """The report a message body holds, or None if it holds none (edited into plain text)."""
    try:
        document = json.loads(text)
    except (TypeError, ValueError):
        return None
    if not isinstance(document, dict) or document.get("type") != BODY_TYPE:
        return None
    try:
        return clean_report(document)
    except Invalid:
        return None


# --- the exercise-wide export --------------------------------------------------------------------

EXPORT_COLUMNS = (
    "report_id",
    "reported_at",
    "room",
    "reported_by",
    "agency",
    "date",
    "place",
    "container_no",
    "hs_code",
    "commodity",
    "quantity",
    "unit",
    "concealment",
    "agencies",
    "notes",
)


def export_row(
    *,
    reference: str,
    reported_at: str,
    room: str,
    reported_by: str,
    agency: str,
    report: SeizureReport,
) -> list[Any]:
    """One report as a row of the CSV hand-over (``EXPORT_COLUMNS``)."""
    quantity: Any = int(report.quantity) if report.quantity.is_integer() else report.quantity
    return [
        reference,
        reported_at,
        room,
        reported_by,
        agency,
        report.date,
        report.place,
        report.container_no,
        report.hs_code,
        report.commodity,
        quantity,
        report.unit,
        report.concealment,
        "; ".join(report.agencies),
        report.notes,
    ]


def export_headers() -> Sequence[str]:
    """The CSV's column names: stable English identifiers, for the systems that import it."""
    return EXPORT_COLUMNS
