"""Writing results out as CSV and XLSX, safe to open in a spreadsheet program.

Cells come from uploaded files, so any of them may be a formula waiting for a spreadsheet to run
it (``=HYPERLINK(...)``, ``+cmd|...``, ``@SUM(...)``). Every text cell that starts with ``=``,
``+``, ``-``, ``@``, a tab or a carriage return is written with a leading apostrophe, in CSV and
XLSX alike, and XLSX cells are written as text, never as formulas. Numbers we computed stay
numbers.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from typing import Any

from django.utils.translation import gettext as _

from liaison.exchange.parsing import Declaration

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
CSV_CONTENT_TYPE = "text/csv; charset=utf-8"
XLSX_CONTENT_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
# Excel reads a CSV as the local code page unless it starts with a byte order mark: with it,
# Chinese text opens correctly on both sides.
CSV_BOM = "\ufeff"
XLSX_SHEET_TITLE_CHARS = 31


def neutralise(value: Any) -> Any:
    """A cell made inert: text that a spreadsheet would run as a formula gets an apostrophe."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def _plain(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return neutralise(value) if isinstance(value, str) else value


def write_csv(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> bytes:
    """One table as UTF-8 CSV with a byte order mark, every cell neutralised."""
    buffer = io.StringIO(newline="")
    buffer.write(CSV_BOM)
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([_plain(str(header)) for header in headers])
    for row in rows:
        writer.writerow([_plain(value) for value in row])
    return buffer.getvalue().encode("utf-8")


def write_xlsx(sheets: Sequence[tuple[str, Sequence[str], Iterable[Sequence[Any]]]]) -> bytes:
    """A workbook of (title, headers, rows) sheets, streamed by openpyxl's write-only mode;
    text cells are typed as text (``data_type = "s"``) after neutralisation."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell

    workbook = Workbook(write_only=True)
    for title, headers, rows in sheets:
        sheet = workbook.create_sheet(title=_sheet_title(title))

        def cells(values: Sequence[Any], sheet: Any = sheet) -> list[Any]:
            out = []
            for value in values:
                cell = WriteOnlyCell(sheet, value=_plain(value))
                if isinstance(cell.value, str):
                    cell.data_type = "s"
                out.append(cell)
            return out

        sheet.append(cells([str(header) for header in headers]))
        for row in rows:
            sheet.append(cells(row))
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _sheet_title(title: str) -> str:
    cleaned = "".join("_" if ch in "[]:*?/\\" else ch for ch in str(title))
    return cleaned[:XLSX_SHEET_TITLE_CHARS] or "Sheet"


# --- a comparison's result as tables ---------------------------------------------------------------

Table = tuple[list[str], list[list[Any]]]


def mirror_table(rows: Sequence[Sequence[Any]]) -> Table:
    """Stored side-by-side lines (``comparison.pairing_row``) as one table: export and import
    columns next to each other, container first."""
    headers = [
        _("Container number"),
        _("Outcome"),
        _("Prohibited prefix"),
        _("Note"),
        _("Mass difference (%)"),
        _("Export declaration"),
        _("Export date"),
        _("Exporter"),
        _("Consignee"),
        _("Export bill of lading"),
        _("Export HS code"),
        _("Export description"),
        _("Export net mass (kg)"),
        _("Import declaration"),
        _("Import date"),
        _("Importer"),
        _("Consignor"),
        _("Import bill of lading"),
        _("Import HS code"),
        _("Import description"),
        _("Import net mass (kg)"),
    ]
    table: list[list[Any]] = []
    for row in rows:
        container, outcome, prefix, note, difference, export, imported = row
        table.append(
            [
                container,
                outcome,
                prefix or "",
                note,
                None if difference is None else round(difference * 100, 2),
                *_side(export),
                *_side(imported),
            ]
        )
    return headers, table


def _side(fields: Sequence[Any] | None) -> list[Any]:
    """One side's columns of a line: reference, date, trader, partner, B/L, HS code,
    description, net mass (blank when that side is missing)."""
    if fields is None:
        return ["", "", "", "", "", "", "", None]
    row = Declaration(*fields)
    return [
        row.reference,
        row.date,
        row.trader,
        row.partner,
        row.bill_of_lading,
        row.hs_code,
        row.description,
        row.net_mass_kg,
    ]


def summary_table(document: dict[str, Any]) -> Table:
    """Counts per outcome and the parameters of a mirror comparison."""
    parameters = document["parameters"]
    rows: list[list[Any]] = [[name, count] for name, count in document["summary"].items()]
    rows.append([_("Weight tolerance (%)"), round(parameters["weight_tolerance"] * 100, 4)])
    rows.append([_("HS digits compared"), parameters["hs_digits"]])
    return [_("Outcome"), _("Count")], rows


def list_table(document: dict[str, Any]) -> Table:
    """The overlapping prefixes of a list comparison, each with the two entries it joins."""
    headers = [
        _("Overlapping prefix"),
        _("Allowed prefix"),
        _("Allowed description"),
        _("Prohibited prefix"),
        _("Prohibited description"),
    ]
    rows = [
        [
            pair["prefix"],
            pair["allowed"],
            pair["allowed_description"],
            pair["prohibited"],
            pair["prohibited_description"],
        ]
        for pair in document["pairs"]
    ]
    return headers, rows


CSV = "csv"
XLSX = "xlsx"
FORMATS = (CSV, XLSX)


def result_file(
    document: dict[str, Any], file_format: str, rows: Sequence[dict[str, Any]] | None = None
) -> bytes:
    """A comparison's result as CSV (the main table) or XLSX (the main table, and for a mirror
    comparison its summary). ``rows`` narrows a mirror comparison's rows."""
    if document["kind"] == "list":
        headers, table = list_table(document)
        if file_format == CSV:
            return write_csv(headers, table)
        return write_xlsx([(_("Overlap"), headers, table)])
    headers, table = mirror_table(document["rows"] if rows is None else rows)
    if file_format == CSV:
        return write_csv(headers, table)
    summary_headers, summary = summary_table(document)
    return write_xlsx([(_("Comparison"), headers, table), (_("Summary"), summary_headers, summary)])
