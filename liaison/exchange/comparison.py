"""Comparing what officers exchanged: two HS-code lists, and exports mirrored against imports.

List comparison: which prefixes of one list (what the UK lets leave) cover codes that the other
(what China prohibits) also covers. Prefixes of different lengths meet when one starts with the
other; the codes both cover are the longer prefix.

Mirror comparison: an export and an import pair when they name the same container and the same
bill of lading. Each pair is an ``hs_mismatch`` when the codes differ at the compared digits (the
six harmonized digits unless told otherwise), else a ``weight_mismatch`` when the import's net
mass differs from the export's by more than the tolerance (of the export's mass), else
``matched``. An export nobody imported is ``export_only`` (a possible diversion), an import
nobody exported ``import_only``; a container whose bill of lading differs on the two sides is
both, with a note. Exports whose code starts with a prohibited prefix are ``prohibited_hits``,
whatever else they are.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.utils.translation import gettext as _

from liaison.errors import Invalid
from liaison.exchange import hs_codes
from liaison.exchange.parsing import Declaration, ListEntry

MATCHED = "matched"
WEIGHT_MISMATCH = "weight_mismatch"
HS_MISMATCH = "hs_mismatch"
EXPORT_ONLY = "export_only"
IMPORT_ONLY = "import_only"
PROHIBITED_HITS = "prohibited_hits"
PAIR_OUTCOMES = (MATCHED, WEIGHT_MISMATCH, HS_MISMATCH, EXPORT_ONLY, IMPORT_ONLY)
OUTCOMES = (*PAIR_OUTCOMES, PROHIBITED_HITS)

DEFAULT_WEIGHT_TOLERANCE = 0.05
DEFAULT_HS_DIGITS = hs_codes.HARMONIZED_DIGITS
HS_DIGITS_CHOICES = (2, 4, 6, 8, 10)

# Why a container is export-only and import-only at once.
BILL_OF_LADING_DIFFERS = "bill_of_lading_differs"

# A mass difference within this (relative) slack of the tolerance is within it: 105 kg against
# 100 kg at 5 % is matched, whatever binary floating point makes of 0.05 * 100.
_EPSILON = 1e-9


# --- lists ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Overlap:
    """An allowed prefix and a prohibited prefix that cover codes in common (``prefix``)."""

    prefix: str
    allowed: str
    prohibited: str
    allowed_description: str = ""
    prohibited_description: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "prefix": self.prefix,
            "allowed": self.allowed,
            "prohibited": self.prohibited,
            "allowed_description": self.allowed_description,
            "prohibited_description": self.prohibited_description,
        }


@dataclass
class ListComparison:
    overlaps: list[Overlap]

    @property
    def overlap(self) -> list[str]:
        """The distinct overlapping prefixes, in order."""
        return sorted({item.prefix for item in self.overlaps})


def compare_lists(allowed: Sequence[ListEntry], prohibited: Sequence[ListEntry]) -> ListComparison:
    """Every (allowed, prohibited) pair of prefixes where one starts with the other.

    A sorted list of prohibited prefixes answers both directions: shorter prohibited prefixes
    covering the allowed one are among its own heads, longer ones sort right after it.
    """
    by_code = {entry.hs_code: entry for entry in prohibited}
    ordered = sorted(by_code)
    lengths = sorted({len(code) for code in ordered})
    overlaps: list[Overlap] = []
    for entry in allowed:
        code = entry.hs_code
        matches: list[str] = []
        for length in lengths:
            if length > len(code):
                break
            if code[:length] in by_code:
                matches.append(code[:length])
        start = bisect.bisect_right(ordered, code)
        for other in ordered[start:]:
            if not other.startswith(code):
                break
            matches.append(other)
        for other in matches:
            overlaps.append(
                Overlap(
                    prefix=hs_codes.common_prefix(code, other) or code,
                    allowed=code,
                    prohibited=other,
                    allowed_description=entry.description,
                    prohibited_description=by_code[other].description,
                )
            )
    overlaps.sort(key=lambda item: (item.prefix, item.allowed, item.prohibited))
    return ListComparison(overlaps)


# --- mirror comparison -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Pairing:
    """One line of the side-by-side result: a container's export and import (either may be
    missing), what they amount to, and the prohibited prefix its export hits."""

    container_no: str
    outcome: str
    export: Declaration | None
    import_: Declaration | None
    prohibited_prefix: str | None = None
    note: str = ""

    @property
    def mass_difference(self) -> float | None:
        """Import minus export mass, as a fraction of the export's (None without both)."""
        if self.export is None or self.import_ is None or not self.export.net_mass_kg:
            return None
        return (self.import_.net_mass_kg - self.export.net_mass_kg) / self.export.net_mass_kg


@dataclass
class MirrorComparison:
    weight_tolerance: float
    hs_digits: int
    pairings: list[Pairing] = field(default_factory=list)
    outcomes: dict[str, list[str]] = field(default_factory=dict)

    @property
    def summary(self) -> dict[str, int]:
        return {name: len(self.outcomes.get(name, [])) for name in OUTCOMES}


def _classify(export: Declaration, imported: Declaration, tolerance: float, digits: int) -> str:
    compared = min(digits, len(export.hs_code), len(imported.hs_code))
    if export.hs_code[:compared] != imported.hs_code[:compared]:
        return HS_MISMATCH
    expected = export.net_mass_kg
    if abs(imported.net_mass_kg - expected) - tolerance * expected > _EPSILON * max(1.0, expected):
        return WEIGHT_MISMATCH
    return MATCHED


def compare_declarations(
    exports: Sequence[Declaration],
    imports: Sequence[Declaration],
    *,
    prohibited: Iterable[str] = (),
    weight_tolerance: float = DEFAULT_WEIGHT_TOLERANCE,
    hs_digits: int = DEFAULT_HS_DIGITS,
    progress: Callable[[float], None] | None = None,
) -> MirrorComparison:
    """Pair, classify and flag (see the module docstring); ``progress`` hears the fraction
    done now and then. Linear: one dictionary of imports by container, one pass each way."""
    if not 0 <= weight_tolerance <= 1:
        raise ValueError("weight_tolerance must be between 0 and 1")
    if hs_digits not in HS_DIGITS_CHOICES:
        raise ValueError(f"hs_digits must be one of {HS_DIGITS_CHOICES}")
    index = hs_codes.PrefixIndex(prohibited)
    imports_by_container = {row.container_no: row for row in imports}
    outcomes: dict[str, list[str]] = {name: [] for name in OUTCOMES}
    pairings: list[Pairing] = []
    paired: set[str] = set()
    step = max(1, len(exports) // 20)
    for number, export in enumerate(exports):
        container = export.container_no
        hit = index.covering(export.hs_code) if len(index) else None
        if hit is not None:
            outcomes[PROHIBITED_HITS].append(container)
        imported = imports_by_container.get(container)
        if imported is None:
            outcome, note, partner = EXPORT_ONLY, "", None
        elif imported.bill_of_lading != export.bill_of_lading:
            outcome, note, partner = EXPORT_ONLY, BILL_OF_LADING_DIFFERS, None
        else:
            outcome = _classify(export, imported, weight_tolerance, hs_digits)
            note, partner = "", imported
            paired.add(container)
        outcomes[outcome].append(container)
        pairings.append(Pairing(container, outcome, export, partner, hit, note))
        if progress is not None and number % step == 0:
            progress(number / max(1, len(exports)) * 0.9)
    exported = {row.container_no for row in exports}
    for imported in imports:
        container = imported.container_no
        if container in paired:
            continue
        note = BILL_OF_LADING_DIFFERS if container in exported else ""
        outcomes[IMPORT_ONLY].append(container)
        pairings.append(Pairing(container, IMPORT_ONLY, None, imported, None, note))
    for containers in outcomes.values():
        containers.sort()
    pairings.sort(key=lambda p: (p.container_no, p.export is None))
    if progress is not None:
        progress(1.0)
    return MirrorComparison(
        weight_tolerance=weight_tolerance,
        hs_digits=hs_digits,
        pairings=pairings,
        outcomes=outcomes,
    )


# --- the stored form of side-by-side rows -------------------------------------------------------
# A result keeps each line as a compact list (a hundred thousand lines encode and decode several
# times faster, and half as large, than as objects); ``row_as_dict`` makes the object the API
# shows, for the lines actually shown.

ROW_COLUMNS = ("container_no", "outcome", "prohibited_prefix", "note", "mass_difference")
CONTAINER, OUTCOME, PROHIBITED_PREFIX, NOTE, MASS_DIFFERENCE, EXPORT, IMPORT = range(7)


def pairing_row(pairing: Pairing) -> list[Any]:
    """A side-by-side line as stored: the columns above, then the export and the import as
    lists of their fields (``Declaration`` order), or None."""
    difference = pairing.mass_difference
    return [
        pairing.container_no,
        pairing.outcome,
        pairing.prohibited_prefix,
        pairing.note,
        None if difference is None else round(difference, 6),
        list(pairing.export) if pairing.export is not None else None,
        list(pairing.import_) if pairing.import_ is not None else None,
    ]


def row_as_dict(row: Sequence[Any]) -> dict[str, Any]:
    """A stored line as the API and the results page show it."""
    return {
        "container_no": row[CONTAINER],
        "outcome": row[OUTCOME],
        "prohibited": row[PROHIBITED_PREFIX] is not None,
        "prohibited_prefix": row[PROHIBITED_PREFIX],
        "note": row[NOTE],
        "mass_difference": row[MASS_DIFFERENCE],
        "export": Declaration(*row[EXPORT]).as_dict() if row[EXPORT] is not None else None,
        "import": Declaration(*row[IMPORT]).as_dict() if row[IMPORT] is not None else None,
    }


def pairing_as_dict(pairing: Pairing) -> dict[str, Any]:
    return row_as_dict(pairing_row(pairing))


def filter_rows(rows: Sequence[list[Any]], *, outcome: str = "") -> list[list[Any]]:
    """Stored lines (``pairing_row``) of one outcome; ``prohibited_hits`` selects the lines
    whose export hits the prohibited list; "" keeps every line."""
    if not outcome:
        return list(rows)
    if outcome == PROHIBITED_HITS:
        return [row for row in rows if row[PROHIBITED_PREFIX] is not None]
    if outcome not in PAIR_OUTCOMES:
        raise Invalid(
            _("outcome must be one of %(outcomes)s.") % {"outcomes": ", ".join(OUTCOMES)},
            field="outcome",
        )
    return [row for row in rows if row[OUTCOME] == outcome]
