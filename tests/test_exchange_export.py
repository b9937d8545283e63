"""Results written out for spreadsheets: whatever an uploaded file carried, no cell runs as a
formula when an officer opens the download."""

from __future__ import annotations

import csv
import io

import pytest

from liaison.exchange import comparison as compare
from liaison.exchange import export
from liaison.exchange.parsing import Declaration

HOSTILE = [
    '=HYPERLINK("http://evil.example","click")',
    "+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(A1:A2)",
    "\t=1+1",
    "\r=1+1",
]


@pytest.mark.parametrize("value", HOSTILE)
def test_a_formula_prefix_gets_an_apostrophe(value: str) -> None:
    assert export.neutralise(value) == "'" + value


def test_plain_text_and_numbers_are_left_alone() -> None:
    assert export.neutralise("Pearl River Polymer") == "Pearl River Polymer"
    assert export.neutralise("废物") == "废物"
    assert export.neutralise(-5) == -5
    assert export.neutralise(3.5) == 3.5


def _document(description: str) -> dict:
    exports = [
        Declaration(2, "CMAU3350033", "FXT1", "72044910", 100.0, trader=description),
        Declaration(3, "MSKU6440390", "FXT2", "72044910", 100.0, description=description),
    ]
    imports = [Declaration(2, "CMAU3350033", "FXT1", "7204491000", 90.0, partner=description)]
    result = compare.compare_declarations(exports, imports)
    return {
        "kind": "mirror",
        "parameters": {"weight_tolerance": 0.05, "hs_digits": 6, "prohibited_list": False},
        "summary": result.summary,
        "outcomes": result.outcomes,
        "rows": [compare.pairing_row(p) for p in result.pairings],
    }


def _number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


@pytest.mark.parametrize("value", HOSTILE)
def test_no_cell_of_a_csv_download_starts_a_formula(value: str) -> None:
    data = export.result_file(_document(value), "csv")

    assert data.startswith(b"\xef\xbb\xbf")  # a BOM, so Excel reads Chinese as UTF-8
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))
    cells = [cell for row in rows for cell in row]
    assert not [
        cell for cell in cells if cell.startswith(export.FORMULA_PREFIXES) and not _number(cell)
    ]
    assert cells.count("'" + value) == 3
    assert rows[1][4] == "-10.0"  # a computed number stays a number (the mass difference)


@pytest.mark.parametrize("value", HOSTILE)
def test_no_cell_of_a_workbook_download_is_a_formula(value: str) -> None:
    from openpyxl import load_workbook

    data = export.result_file(_document(value), "xlsx")

    workbook = load_workbook(io.BytesIO(data))
    assert workbook.sheetnames == ["Comparison", "Summary"]
    cells = [cell for sheet in workbook for row in sheet.iter_rows() for cell in row]
    assert not [cell for cell in cells if cell.data_type == "f"]
    texts = [cell.value for cell in cells if isinstance(cell.value, str)]
    # (XML reads a carriage return back as a line feed)
    assert texts.count("'" + value.replace("\r", "\n")) == 3
    assert not [text for text in texts if text.startswith(export.FORMULA_PREFIXES)]
    mass = workbook["Comparison"]["M2"]
    assert (mass.value, mass.data_type) == (100, "n")


def test_a_list_comparison_downloads_as_one_table() -> None:
    document = {
        "kind": "list",
        "overlap": ["3915"],
        "pairs": [
            {
                "prefix": "3915",
                "allowed": "3915",
                "prohibited": "3915",
                "allowed_description": "=evil()",
                "prohibited_description": "Plastics",
            }
        ],
    }
    rows = list(csv.reader(io.StringIO(export.result_file(document, "csv").decode("utf-8-sig"))))
    assert rows[1] == ["3915", "3915", "'=evil()", "3915", "Plastics"]
