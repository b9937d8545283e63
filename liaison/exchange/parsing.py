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
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import json
import math
import re
import unicodedata
import zipfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from liaison.errors import Invalid, TooLarge
from liaison.exchange import containers, hs_codes

# --- what a data set is -------------------------------------------------------------------------

PROHIBITED_LIST = "prohibited_list"
ALLOWED_LIST = "allowed_list"
EXPORT_DECLARATIONS = "export_declarations"
IMPORT_DECLARATIONS = "import_declarations"
LIST_KINDS = frozenset({PROHIBITED_LIST, ALLOWED_LIST})
DECLARATION_KINDS = frozenset({EXPORT_DECLARATIONS, IMPORT_DECLARATIONS})
KINDS = (PROHIBITED_LIST, ALLOWED_LIST, EXPORT_DECLARATIONS, IMPORT_DECLARATIONS)

CSV_FORMAT = "csv"
XLSX_FORMAT = "xlsx"

BILL_OF_LADING_MAX_CHARS = 35  # UN/EDIFACT's transport document reference


@dataclass(frozen=True)
class Limits:
    """How much of a file is read before it is refused. The defaults fit the largest real
    exercise files (a hundred thousand declarations) with room to spare."""

    max_rows: int = 200_000
    max_columns: int = 100
    max_cell_chars: int = 1_000
    # XLSX is a ZIP archive: what it may inflate to, in all and per entry, and how many entries.
    max_uncompressed_bytes: int = 512 * 1024 * 1024
    max_compression_ratio: int = 200
    max_zip_entries: int = 1_000
    # Bad rows are all counted; this many are listed (each with row, column and reason).
    max_listed_errors: int = 10_000


DEFAULT_LIMITS = Limits()


@dataclass(frozen=True)
class Column:
    """A field of a data set and the headers it is recognised by."""

    name: str
    label: Any  # lazily translated, for the column-mapping form
    required: bool
    headers: tuple[str, ...]


def _key(header: str) -> str:
    """A header as compared: width-folded (NFKC turns （千克） into (千克)), case-folded, and
    without spaces and punctuation, so "Net mass (kg)", "net_mass_kg" and "NET MASS KG" agree."""
    text = unicodedata.normalize("NFKC", header).casefold()
    return "".join(ch for ch in text if ch.isalnum())


_HS_HEADERS = (
    "hs_code",
    "hs",
    "hs code",
    "hs prefix",
    "commodity code",
    "tariff code",
    "code",
    "商品编码",
    "商品编号",
    "税则号",
    "税则号列",
    "hs编码",
    "海关编码",
)
_DESCRIPTION_HEADERS = (
    "description",
    "goods description",
    "commodity",
    "description of goods",
    "商品名称",
    "货物名称",
    "品名",
    "描述",
    "说明",
)
_CONTAINER = Column(
    "container_no",
    gettext_lazy("Container number"),
    True,
    (
        "container_no",
        "container number",
        "container",
        "cntr no",
        "container id",
        "集装箱号",
        "集装箱编号",
        "箱号",
    ),
)
_BILL_OF_LADING = Column(
    "bill_of_lading",
    gettext_lazy("Bill of lading"),
    True,
    (
        "bill_of_lading",
        "bill of lading number",
        "b/l",
        "bl",
        "b/l no",
        "bl no",
        "bol",
        "提单号",
        "提运单号",
        "提单编号",
    ),
)
_HS_DECLARED = Column("hs_code", gettext_lazy("HS code"), True, _HS_HEADERS)
_NET_MASS = Column(
    "net_mass_kg",
    gettext_lazy("Net mass (kg)"),
    True,
    (
        "net_mass_kg",
        "net mass",
        "net mass kg",
        "net weight",
        "net weight kg",
        "net wt",
        "净重（千克）",
        "净重(千克)",
        "净重",
        "净重kg",
        "净重公斤",
    ),
)
_DESCRIPTION = Column("description", gettext_lazy("Description"), False, _DESCRIPTION_HEADERS)
_DATE_HEADERS = ("date", "declaration date", "申报日期")


def _declaration_columns(*, exports: bool) -> tuple[Column, ...]:
    reference = (
        ("declaration_id", "declaration number", "declaration", "mrn", "entry", "报关单号")
        if exports
        else (
            "entry_no",
            "entry number",
            "declaration number",
            "declaration_id",
            "报关单号",
            "报关单编号",
        )
    )
    date = (
        ("export_date", "出口日期", *_DATE_HEADERS)
        if exports
        else ("import_date", "进口日期", *_DATE_HEADERS)
    )
    trader = (
        ("exporter", "shipper", "发货人", "境内发货人")
        if exports
        else ("importer", "收货人", "境内收货人", "消费使用单位")
    )
    partner = ("consignee", "境外收货人") if exports else ("consignor", "境外发货人", "发货人")
    loading = ("port_of_loading", "port of loading", "pol", "装货港")
    discharge = ("port_of_discharge", "port of discharge", "pod", "卸货港", "指运港")
    if not exports:
        discharge = (*discharge, "port", "port of entry", "进境口岸", "口岸", "入境口岸")
    return (
        _CONTAINER,
        _BILL_OF_LADING,
        _HS_DECLARED,
        _NET_MASS,
        Column("reference", gettext_lazy("Declaration reference"), False, reference),
        Column("date", gettext_lazy("Date"), False, date),
        Column(
            "trader",
            gettext_lazy("Exporter") if exports else gettext_lazy("Importer"),
            False,
            trader,
        ),
        Column(
            "partner",
            gettext_lazy("Consignee") if exports else gettext_lazy("Consignor"),
            False,
            partner,
        ),
        _DESCRIPTION,
        Column("port_of_loading", gettext_lazy("Port of loading"), False, loading),
        Column("port_of_discharge", gettext_lazy("Port of discharge"), False, discharge),
    )


_LIST_COLUMNS = (
    Column("hs_code", gettext_lazy("HS code prefix"), True, _HS_HEADERS),
    _DESCRIPTION,
)
COLUMNS: dict[str, tuple[Column, ...]] = {
    PROHIBITED_LIST: _LIST_COLUMNS,
    ALLOWED_LIST: _LIST_COLUMNS,
    EXPORT_DECLARATIONS: _declaration_columns(exports=True),
    IMPORT_DECLARATIONS: _declaration_columns(exports=False),
}
# Declaration fields kept for showing rows side by side, in their stored order.
DECLARATION_FIELDS = (
    "container_no",
    "bill_of_lading",
    "hs_code",
    "net_mass_kg",
    "reference",
    "date",
    "trader",
    "partner",
    "description",
    "port_of_loading",
    "port_of_discharge",
)


# --- what reading produces ----------------------------------------------------------------------


class ListEntry(NamedTuple):
    """One HS-code prefix of a list."""

    row: int
    hs_code: str
    description: str = ""


class Declaration(NamedTuple):
    """One declaration: a container's goods on one side of the border. (A named tuple: a
    hundred thousand of them are made per file, and tuples are made fastest.)"""

    row: int
    container_no: str
    bill_of_lading: str
    hs_code: str
    net_mass_kg: float
    reference: str = ""
    date: str = ""
    trader: str = ""
    partner: str = ""
    description: str = ""
    port_of_loading: str = ""
    port_of_discharge: str = ""

    def as_dict(self) -> dict[str, Any]:
        return self._asdict()


@dataclass(frozen=True, slots=True)
class RowError:
    """What is wrong with one cell (or one row): row number, column as headed in the file."""

    row: int
    column: str
    field: str
    code: str
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "row": self.row,
            "column": self.column,
            "field": self.field,
            "code": self.code,
            "detail": self.detail,
        }


@dataclass
class ParsedDataset:
    kind: str
    file_format: str
    encoding: str
    headers: list[str]
    columns: dict[str, str]  # field -> header as written in the file
    rows: list[Any] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    error_count: int = 0  # every bad cell, also those beyond the listed ones
    blank_rows: int = 0

    @property
    def ok(self) -> bool:
        return self.error_count == 0


class SpreadsheetRefused(Invalid):
    """The file as a whole cannot be read (not CSV or XLSX, no header, unknown encoding)."""

    code = "unreadable"


class SpreadsheetTooLarge(TooLarge):
    """The file exceeds a limit on rows, columns or archive expansion."""


class ColumnsNotFound(Invalid):
    """Required columns were not recognised: the uploader maps them (``columns``)."""

    code = "columns_not_found"

    def __init__(self, detail: str, *, missing: list[str], headers: list[str]) -> None:
        super().__init__(detail, field="columns")
        self.missing = missing
        self.headers = headers


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


def decode_text(data: bytes) -> tuple[str, str]:
    """The text of a CSV and the encoding it was in: a byte order mark decides; otherwise
    strict UTF-8, then GB18030 (Chinese systems' default export), else refused."""
    if data.startswith(codecs.BOM_UTF8):
        candidates: Sequence[str] = ("utf-8-sig",)
    elif data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        candidates = ("utf-16",)
    else:
        candidates = ("utf-8", "gb18030")
    for encoding in candidates:
        try:
            return data.decode(encoding), encoding
        except UnicodeDecodeError:
            continue
    raise SpreadsheetRefused(
        _(
            "The file's text encoding was not recognised (UTF-8 and GB18030 are): "
            "save it as CSV UTF-8 and upload it again."
        ),
        field="file",
    )


def _delimiter(text: str) -> str:
    """The delimiter of the header line: the most frequent of comma, semicolon, tab, bar."""
    first = text.split("\n", 1)[0]
    counts = {d: first.count(d) for d in (",", ";", "\t", "|")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def _csv_rows(data: bytes, limits: Limits) -> tuple[Iterator[list[Any]], str]:
    text, encoding = decode_text(data)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(text), strict=False)

    def rows() -> Iterator[list[Any]]:
        try:
            yield from reader
        except csv.Error:
            raise SpreadsheetRefused(
                _("Row %(row)s cannot be read as CSV (a cell is too long or badly quoted).")
                % {"row": reader.line_num},
                field="file",
            ) from None

    return rows(), encoding


def check_archive(data: bytes, limits: Limits) -> None:
    """Refuse a ZIP whose directory promises more than the limits, before inflating any of it
    (zipfile itself never inflates an entry beyond its declared size)."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError, OSError):
        raise SpreadsheetRefused(
            _("The file is not a readable XLSX workbook."), field="file"
        ) from None
    with archive:
        entries = archive.infolist()
        if len(entries) > limits.max_zip_entries:
            raise SpreadsheetTooLarge(
                _("The workbook holds more than %(count)s parts.")
                % {"count": limits.max_zip_entries},
                field="file",
            )
        total = 0
        for entry in entries:
            total += entry.file_size
            ratio = entry.file_size / max(entry.compress_size, 1)
            if entry.file_size > 1024 * 1024 and ratio > limits.max_compression_ratio:
                raise SpreadsheetTooLarge(
                    _("The workbook expands too much to be read safely (part %(name)s).")
                    % {"name": entry.filename[:80]},
                    field="file",
                )
        if total > limits.max_uncompressed_bytes:
            raise SpreadsheetTooLarge(
                _("The workbook expands to more than %(mib)s MiB.")
                % {"mib": limits.max_uncompressed_bytes // (1024 * 1024)},
                field="file",
            )


def _xlsx_rows(data: bytes, limits: Limits) -> Iterator[Sequence[Any]]:
    from openpyxl import load_workbook
    from openpyxl.xml import DEFUSEDXML

    if not DEFUSEDXML:  # never parse an untrusted workbook with the stdlib's XML parser
        raise SpreadsheetRefused(
            _("Workbooks cannot be read on this server; upload CSV instead."), field="file"
        )
    check_archive(data, limits)
    try:
        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception:  # openpyxl raises many kinds of errors on a malformed workbook
        raise SpreadsheetRefused(
            _("The file is not a readable XLSX workbook."), field="file"
        ) from None
    try:
        if not workbook.worksheets:
            raise SpreadsheetRefused(_("The workbook has no worksheet."), field="file")
        sheet = workbook.worksheets[0]
        # The declared dimensions are the file's word only: read the cells that are there.
        sheet.reset_dimensions()
        try:
            yield from sheet.iter_rows(values_only=True)
        except (SpreadsheetRefused, SpreadsheetTooLarge):
            raise
        except Exception:
            raise SpreadsheetRefused(
                _("The workbook's first sheet cannot be read."), field="file"
            ) from None
    finally:
        workbook.close()


# --- cells -------------------------------------------------------------------------------------


def _text(value: Any) -> str:
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
        text = _text(value).replace(" ", "").replace("\u00a0", "")
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
    return hs_codes.normalise(_text(value))


# --- the header and the column mapping ------------------------------------------------------------


def map_columns(
    kind: str, headers: Sequence[str], given: Mapping[str, str] | None = None
) -> dict[str, int]:
    """Field name -> column index. ``given`` (field -> header as written) takes precedence
    over recognition; a required field found neither way raises ``ColumnsNotFound``."""
    columns = COLUMNS[kind]
    known = {column.name for column in columns}
    by_key: dict[str, int] = {}
    for index, header in enumerate(headers):
        key = _key(header)
        if key and key not in by_key:
            by_key[key] = index
    found: dict[str, int] = {}
    for name, header in (given or {}).items():
        if name not in known:
            raise Invalid(
                _("'%(name)s' is not a column of this kind of data set.") % {"name": name[:40]},
                field="columns",
            )
        index = by_key.get(_key(str(header)))
        if index is None:
            raise Invalid(
                _("The file has no column headed '%(header)s'.") % {"header": str(header)[:80]},
                field="columns",
            )
        found[name] = index
    taken = set(found.values())
    for column in columns:
        if column.name in found:
            continue
        for synonym in column.headers:
            index = by_key.get(_key(synonym))
            if index is not None and index not in taken:
                found[column.name] = index
                taken.add(index)
                break
    missing = [column.name for column in columns if column.required and column.name not in found]
    if missing:
        labels = ", ".join(str(column.label) for column in columns if column.name in set(missing))
        raise ColumnsNotFound(
            _(
                "These columns were not recognised: %(labels)s. Name the file's column for "
                "each (the column mapping)."
            )
            % {"labels": labels},
            missing=missing,
            headers=[str(h) for h in headers],
        )
    return found


# --- reading a whole file --------------------------------------------------------------------------


class _Collector:
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


def read_rows(
    data: bytes, *, limits: Limits = DEFAULT_LIMITS
) -> tuple[str, str, Iterator[Sequence[Any]]]:
    """The format, the CSV encoding ("" for a workbook) and the raw rows of a file."""
    file_format = detect_format(data)
    if file_format == XLSX_FORMAT:
        return file_format, "", _xlsx_rows(data, limits)
    rows, encoding = _csv_rows(data, limits)
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
        _check_shape(number, cells, limits)
        if any(_text(cell) for cell in cells):
            header_row = number
            # As written in the file (not width-folded): reports and the mapping name them so.
            headers = [
                (cell.strip() if isinstance(cell, str) else _text(cell))[: limits.max_cell_chars]
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
    errors = _Collector(parsed, headers, limits.max_listed_errors)
    if kind in LIST_KINDS:
        _read_list(parsed, rows, header_row, mapping, errors, limits)
    else:
        _read_declarations(parsed, rows, header_row, mapping, errors, limits)
    return parsed


def _check_shape(number: int, cells: Sequence[Any], limits: Limits) -> None:
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
        _check_shape(number, cells, limits)
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
    number: int, cells: Sequence[Any], mapping: Mapping[str, int], errors: _Collector, limit: int
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


def _read_list(
    parsed: ParsedDataset,
    rows: Iterator[Sequence[Any]],
    header_row: int,
    mapping: Mapping[str, int],
    errors: _Collector,
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
        if not _text(raw):
            errors.add(number, hs_index, "hs_code", "missing", _("The HS code is missing."))
            continue
        if not hs_codes.is_prefix(code):
            errors.add(
                number,
                hs_index,
                "hs_code",
                "bad_hs_code",
                _("'%(value)s' is not an HS code prefix (2, 4, 6, 8 or 10 digits).")
                % {"value": _text(raw)[:40]},
            )
            continue
        if code in seen:  # listed twice: harmless, kept once
            continue
        seen.add(code)
        parsed.rows.append(ListEntry(number, code, _text(_cell(cells, description_index))))


def _read_declarations(
    parsed: ParsedDataset,
    rows: Iterator[Sequence[Any]],
    header_row: int,
    mapping: Mapping[str, int],
    errors: _Collector,
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
                % {"value": _text(raw_hs)[:40]},
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
                    % {"value": _text(raw_mass)[:40]},
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
    """``_text``, with plain ASCII text (nearly every cell of a CSV) taking the short way."""
    if type(value) is str and value.isascii():
        return value.strip()
    return _text(value)


def _longest(cells: Sequence[Any]) -> int:
    """The longest text cell's length (0 for a row of no text), cheaply for a row of text."""
    try:
        return max(map(len, cells), default=0)
    except TypeError:  # numbers, dates, empty cells of a workbook
        return max((len(cell) for cell in cells if isinstance(cell, str)), default=0)


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
