"""Reading an officer's spreadsheet (CSV or XLSX) into checked rows.

Uploaded spreadsheets are untrusted input. A workbook is opened by openpyxl in read-only mode
with ``defusedxml`` installed (no entity expansion), only after its ZIP directory was checked
against limits on entries and on declared and compressed sizes (a zip bomb is refused before
anything is inflated); every file is held to limits on rows, columns and cell length. A CSV's
encoding is recognised (UTF-8 with or without a byte order mark, UTF-16 with one, GB18030 as
Chinese systems write it) and so is its delimiter.

Columns are recognised by their headers, English or Chinese (集装箱号, 提单号, 商品编码,
净重（千克）, ...), or named by the uploader (``columns``) where the file says something else.
Every bad row is reported with its row number (as a spreadsheet program numbers it), its column
(the header as written in the file) and what is wrong; the caller decides that a file with any
bad row is not used, so nothing half-valid is imported silently.

This module reads a whole file and keeps its checked rows; the steps live beside it
(``csv_input``, ``xlsx_input``, ``columns``, ``rows``, ``dataset``) and their public names are
importable from here.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from django.utils.translation import gettext as _

from liaison.errors import Invalid
from liaison.exchange.columns import COLUMNS, DECLARATION_FIELDS, Column, map_columns
from liaison.exchange.csv_input import csv_rows, decode_text
from liaison.exchange.dataset import (
    ALLOWED_LIST,
    BILL_OF_LADING_MAX_CHARS,
    CSV_FORMAT,
    DECLARATION_KINDS,
    DEFAULT_LIMITS,
    EXPORT_DECLARATIONS,
    IMPORT_DECLARATIONS,
    KINDS,
    LIST_KINDS,
    PROHIBITED_LIST,
    XLSX_FORMAT,
    ColumnsNotFound,
    Declaration,
    Limits,
    ListEntry,
    ParsedDataset,
    RowError,
    SpreadsheetRefused,
    SpreadsheetTooLarge,
)
from liaison.exchange.rows import (
    ErrorCollector,
    cell_text,
    check_shape,
    read_declarations,
    read_list,
)
from liaison.exchange.xlsx_input import check_archive, xlsx_rows

__all__ = [
    "ALLOWED_LIST",
    "BILL_OF_LADING_MAX_CHARS",
    "COLUMNS",
    "CSV_FORMAT",
    "DECLARATION_FIELDS",
    "DECLARATION_KINDS",
    "DEFAULT_LIMITS",
    "EXPORT_DECLARATIONS",
    "IMPORT_DECLARATIONS",
    "KINDS",
    "LIST_KINDS",
    "OLE2_MAGIC",
    "PROHIBITED_LIST",
    "ROWS_FORMAT",
    "XLSX_FORMAT",
    "ZIP_MAGIC",
    "Column",
    "ColumnsNotFound",
    "Declaration",
    "Limits",
    "ListEntry",
    "ParsedDataset",
    "RowError",
    "SpreadsheetRefused",
    "SpreadsheetTooLarge",
    "check_archive",
    "decode_rows",
    "decode_text",
    "detect_format",
    "encode_rows",
    "list_prefixes",
    "map_columns",
    "parse_dataset",
    "read_rows",
]

# --- from bytes to rows of cells -----------------------------------------------------------------

ZIP_MAGIC = b"PK\x03\x04"
OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # legacy .xls


def detect_format(data: bytes) -> str:
    """XLSX by its ZIP signature, CSV for text; anything else is refused."""
    if data.startswith(ZIP_MAGIC):
        return XLSX_FORMAT
    if data.startswith(OLE2_MAGIC):
        raise SpreadsheetRefused(
            _("This is an old Excel workbook (.xls): save it as XLSX or CSV and upload that."),
            field="file",
        )
    head = data[:4096]
    if b"\x00" in head and not head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise SpreadsheetRefused(_("The file is neither CSV nor XLSX."), field="file")
    return CSV_FORMAT


# --- reading a whole file -------------------------------------------------------------------------


def read_rows(
    data: bytes, *, limits: Limits = DEFAULT_LIMITS
) -> tuple[str, str, Iterator[Sequence[Any]]]:
    """The format, the CSV encoding ("" for a workbook) and the raw rows of a file."""
    file_format = detect_format(data)
    if file_format == XLSX_FORMAT:
        return file_format, "", xlsx_rows(data, limits)
    rows, encoding = csv_rows(data, limits)
    return file_format, encoding, rows


def parse_dataset(
    data: bytes,
    *,
    kind: str,
    columns: Mapping[str, str] | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> ParsedDataset:
    """Read and check a whole file (see the module docstring). Whole-file problems raise
    (``SpreadsheetRefused``, ``SpreadsheetTooLarge``, ``ColumnsNotFound``); bad rows are
    collected in the result, which is ``ok`` only when there are none."""
    if kind not in COLUMNS:
        raise Invalid(_("Unknown kind of data set."), field="kind")
    file_format, encoding, rows = read_rows(data, limits=limits)
    try:
        return _parse(kind, file_format, encoding, rows, columns, limits)
    finally:
        close = getattr(rows, "close", None)
        if close is not None:
            close()


def _parse(
    kind: str,
    file_format: str,
    encoding: str,
    rows: Iterator[Sequence[Any]],
    given: Mapping[str, str] | None,
    limits: Limits,
) -> ParsedDataset:
    header_row = 0
    headers: list[str] = []
    for number, cells in enumerate(rows, start=1):
        check_shape(number, cells, limits)
        if any(cell_text(cell) for cell in cells):
            header_row = number
            # As written in the file (not width-folded): reports and the mapping name them so.
            headers = [
                (cell.strip() if isinstance(cell, str) else cell_text(cell))[
                    : limits.max_cell_chars
                ]
                for cell in cells
            ]
            break
        if number > limits.max_rows:
            break
    if not header_row:
        raise SpreadsheetRefused(_("The file is empty: it has no header row."), field="file")
    mapping = map_columns(kind, headers, given)
    parsed = ParsedDataset(
        kind=kind,
        file_format=file_format,
        encoding=encoding,
        headers=headers,
        columns={name: headers[index] for name, index in mapping.items()},
    )
    errors = ErrorCollector(parsed, headers, limits.max_listed_errors)
    if kind in LIST_KINDS:
        read_list(parsed, rows, header_row, mapping, errors, limits)
    else:
        read_declarations(parsed, rows, header_row, mapping, errors, limits)
    return parsed


# --- the stored form of checked rows ----------------------------------------------------------------
# What a data set keeps (sealed) besides its original file, so a comparison reads back checked
# rows in a fraction of the time a workbook takes to parse.

ROWS_FORMAT = 1


def encode_rows(parsed: ParsedDataset) -> bytes:
    """Checked rows and the listed errors as compact JSON."""
    if parsed.kind in LIST_KINDS:
        rows: list[list[Any]] = [[r.row, r.hs_code, r.description] for r in parsed.rows]
    else:
        rows = [[r.row, *(getattr(r, name) for name in DECLARATION_FIELDS)] for r in parsed.rows]
    document = {
        "format": ROWS_FORMAT,
        "kind": parsed.kind,
        "rows": rows,
        "errors": [error.as_dict() for error in parsed.errors],
        "error_count": parsed.error_count,
    }
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()


def decode_rows(data: bytes) -> tuple[str, list[Any], list[dict[str, Any]]]:
    """Kind, rows (``ListEntry`` or ``Declaration``) and listed errors of ``encode_rows``."""
    document = json.loads(data)
    kind = document["kind"]
    if kind in LIST_KINDS:
        rows: list[Any] = [ListEntry(*row) for row in document["rows"]]
    else:
        rows = [Declaration(*row) for row in document["rows"]]
    return kind, rows, document["errors"]


def list_prefixes(entries: Iterable[ListEntry]) -> list[str]:
    return [entry.hs_code for entry in entries]
