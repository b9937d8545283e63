"""What a data set is and what reading one yields: kinds, limits, checked rows, bad cells."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

from liaison.errors import Invalid, TooLarge

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
