"""Checking rows cell by cell: HS codes, container numbers, bills of lading, net mass."""

from __future__ import annotations

import datetime as dt
import math
import re
import unicodedata
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from django.utils.translation import gettext as _

from liaison.exchange import containers, hs_codes
from liaison.exchange.columns import DECLARATION_FIELDS
from liaison.exchange.dataset import (
    BILL_OF_LADING_MAX_CHARS,
    Declaration,
    Limits,
    ListEntry,
    ParsedDataset,
    RowError,
    SpreadsheetTooLarge,
)


def cell_text(value: Any) -> str:
    """A cell as text: strings width-folded and trimmed, numbers without a spurious ".0",
    dates as ISO 8601."""
    if value is None:
        return ""
    if isinstance(value, str):
        if not value.isascii():
            value = unicodedata.normalize("NFKC", value)
        return value.strip()
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        if math.isfinite(value) and value.is_integer():
            return str(int(value))
        return repr(value)
    if isinstance(value, dt.datetime):
        if value.time() == dt.time(0):
            return value.date().isoformat()
        return value.isoformat()
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return str(value)


_THOUSANDS = re.compile(r"[0-9]{1,3}(,[0-9]{3})+(\.[0-9]+)?")
_NUMBER = re.compile(r"[0-9]+(\.[0-9]*)?|\.[0-9]+")


def _mass(value: Any) -> float | None:
    """Kilograms as a non-negative finite number, from a number or text like "15,316.5"."""
    if type(value) is str and value.isdigit() and value.isascii():
        return float(value)
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        number = float(value)
    else:
        text = cell_text(value).replace(" ", "").replace("\u00a0", "")
        if text.lower().endswith("kg"):
            text = text[:-2]
        if _THOUSANDS.fullmatch(text):
            text = text.replace(",", "")
        if not _NUMBER.fullmatch(text):
            return None
        number = float(text)
    if not math.isfinite(number) or number < 0:
        return None
    return number


def _hs(value: Any) -> str:
    """The digits of an HS code; a code that was a number in the sheet gets back the leading
    zero a spreadsheet drops."""
    if isinstance(value, bool):
        return ""
    if isinstance(value, int):
        return hs_codes.restore_leading_zero(str(value)) if value >= 0 else ""
    if isinstance(value, float):
        if not (math.isfinite(value) and value.is_integer() and value >= 0):
            return ""
        return hs_codes.restore_leading_zero(str(int(value)))
    return hs_codes.normalise(cell_text(value))


class ErrorCollector:
    """Bad cells of one file: all counted, the first ``limit`` listed."""

    def __init__(self, parsed: ParsedDataset, headers: list[str], limit: int) -> None:
        self.parsed = parsed
        self.headers = headers
        self.limit = limit

    def add(self, row: int, index: int | None, name: str, code: str, detail: str) -> None:
        self.parsed.error_count += 1
        if len(self.parsed.errors) < self.limit:
            column = self.headers[index] if index is not None else name
            self.parsed.errors.append(RowError(row, column, name, code, detail))


def check_shape(number: int, cells: Sequence[Any], limits: Limits) -> None:
    if number > limits.max_rows + 1:
        raise SpreadsheetTooLarge(
            _("The file has more than %(rows)s rows.") % {"rows": f"{limits.max_rows:,}"},
            field="file",
        )
    if len(cells) > limits.max_columns:
        # Trailing empty cells (a sheet formatted far to the right) are not columns.
        last = len(cells)
        while last > limits.max_columns and (cells[last - 1] is None or cells[last - 1] == ""):
            last -= 1
        if last > limits.max_columns:
            raise SpreadsheetTooLarge(
                _("Row %(row)s has more than %(columns)s columns.")
                % {"row": number, "columns": limits.max_columns},
                field="file",
            )


def _rows_after_header(
    rows: Iterator[Sequence[Any]], header_row: int, limits: Limits, parsed: ParsedDataset
) -> Iterator[tuple[int, Sequence[Any]]]:
    for number, cells in enumerate(rows, start=header_row + 1):
        check_shape(number, cells, limits)
        for cell in cells:
            if cell is not None and (not isinstance(cell, str) or cell.strip()):
                break
        else:
            parsed.blank_rows += 1
            continue
        yield number, cells


def _cell(cells: Sequence[Any], index: int | None) -> Any:
    if index is None or index >= len(cells):
        return None
    return cells[index]


def _too_long(
    number: int,
    cells: Sequence[Any],
    mapping: Mapping[str, int],
    errors: ErrorCollector,
    limit: int,
) -> bool:
    """Report every mapped cell longer than the limit; True if there was one."""
    found = False
    for name, index in mapping.items():
        value = _cell(cells, index)
        if isinstance(value, str) and len(value) > limit:
            errors.add(
                number,
                index,
                name,
                "cell_too_long",
                _("The cell holds more than %(limit)s characters.") % {"limit": limit},
            )
            found = True
    return found


def read_list(
    parsed: ParsedDataset,
    rows: Iterator[Sequence[Any]],
    header_row: int,
    mapping: Mapping[str, int],
    errors: ErrorCollector,
    limits: Limits,
) -> None:
    hs_index = mapping["hs_code"]
    description_index = mapping.get("description")
    seen: set[str] = set()
    for number, cells in _rows_after_header(rows, header_row, limits, parsed):
        if _too_long(number, cells, mapping, errors, limits.max_cell_chars):
            continue
        raw = _cell(cells, hs_index)
        code = _hs(raw)
        if not cell_text(raw):
            errors.add(number, hs_index, "hs_code", "missing", _("The HS code is missing."))
            continue
        if not hs_codes.is_prefix(code):
            errors.add(
                number,
                hs_index,
                "hs_code",
                "bad_hs_code",
                _("'%(value)s' is not an HS code prefix (2, 4, 6, 8 or 10 digits).")
                % {"value": cell_text(raw)[:40]},
            )
            continue
        if code in seen:  # listed twice: harmless, kept once
            continue
        seen.add(code)
        parsed.rows.append(ListEntry(number, code, cell_text(_cell(cells, description_index))))


def read_declarations(
    parsed: ParsedDataset,
    rows: Iterator[Sequence[Any]],
    header_row: int,
    mapping: Mapping[str, int],
    errors: ErrorCollector,
    limits: Limits,
) -> None:
    """The hot loop of a large upload (a hundred thousand rows): plain text cells take the
    quick path, anything else goes through the general conversions."""
    container_at = mapping["container_no"]
    bill_at = mapping["bill_of_lading"]
    hs_at = mapping["hs_code"]
    mass_at = mapping["net_mass_kg"]
    optional = [mapping.get(name) for name in DECLARATION_FIELDS[4:]]
    width = max(mapping.values()) + 1
    padding = [None] * width
    first_row: dict[str, int] = {}
    append = parsed.rows.append
    limit = limits.max_cell_chars
    for number, cells in _rows_after_header(rows, header_row, limits, parsed):
        if len(cells) < width:
            cells = [*cells, *padding[: width - len(cells)]]
        if _longest(cells) > limit and _too_long(number, cells, mapping, errors, limit):
            continue
        bad = False
        raw_container = _quick_text(cells[container_at])
        container = containers.normalise(raw_container)
        if not container:
            errors.add(
                number,
                container_at,
                "container_no",
                "missing",
                _("The container number is missing."),
            )
            bad = True
        elif not containers.well_formed(container):
            errors.add(
                number,
                container_at,
                "container_no",
                "bad_container",
                _("'%(value)s' is not a container number (ISO 6346: four letters, seven digits).")
                % {"value": raw_container[:40]},
            )
            bad = True
        elif not containers.is_valid(container):
            errors.add(
                number,
                container_at,
                "container_no",
                "bad_check_digit",
                _("%(value)s fails its ISO 6346 check digit (it should end in %(digit)s).")
                % {"value": container, "digit": containers.check_digit(container[:10])},
            )
            bad = True
        elif container in first_row:
            errors.add(
                number,
                container_at,
                "container_no",
                "duplicate_container",
                _("Container number %(value)s is already declared on row %(row)s.")
                % {"value": container, "row": first_row[container]},
            )
            bad = True
        else:
            first_row[container] = number
        bill = _quick_text(cells[bill_at]).upper().replace(" ", "")
        if not bill:
            errors.add(
                number, bill_at, "bill_of_lading", "missing", _("The bill of lading is missing.")
            )
            bad = True
        elif len(bill) > BILL_OF_LADING_MAX_CHARS:
            errors.add(
                number,
                bill_at,
                "bill_of_lading",
                "bad_bill_of_lading",
                _("A bill of lading number has at most %(limit)s characters.")
                % {"limit": BILL_OF_LADING_MAX_CHARS},
            )
            bad = True
        raw_hs = cells[hs_at]
        code = raw_hs if type(raw_hs) is str and raw_hs.isdigit() else _hs(raw_hs)
        if not code and not _quick_text(raw_hs):
            errors.add(number, hs_at, "hs_code", "missing", _("The HS code is missing."))
            bad = True
        elif not hs_codes.is_declared_code(code):
            errors.add(
                number,
                hs_at,
                "hs_code",
                "bad_hs_code",
                _("'%(value)s' is not an HS code (6, 8 or 10 digits).")
                % {"value": cell_text(raw_hs)[:40]},
            )
            bad = True
        raw_mass = cells[mass_at]
        mass = _mass(raw_mass)
        if mass is None:
            if raw_mass is None or (isinstance(raw_mass, str) and not raw_mass.strip()):
                errors.add(number, mass_at, "net_mass_kg", "missing", _("The net mass is missing."))
            else:
                errors.add(
                    number,
                    mass_at,
                    "net_mass_kg",
                    "bad_mass",
                    _("'%(value)s' is not a net mass in kilograms (a number, 0 or more).")
                    % {"value": cell_text(raw_mass)[:40]},
                )
            bad = True
        if bad:
            continue
        append(
            Declaration(
                number,
                container,
                bill,
                code,
                mass,
                *["" if index is None else _quick_text(cells[index]) for index in optional],
            )
        )


def _quick_text(value: Any) -> str:
    """``cell_text``, with plain ASCII text (nearly every cell of a CSV) taking the short way."""
    if type(value) is str and value.isascii():
        return value.strip()
    return cell_text(value)


def _longest(cells: Sequence[Any]) -> int:
    """The longest text cell's length (0 for a row of no text), cheaply for a row of text."""
    try:
        return max(map(len, cells), default=0)
    except TypeError:  # numbers, dates, empty cells of a workbook
        return max((len(cell) for cell in cells if isinstance(cell, str)), default=0)
