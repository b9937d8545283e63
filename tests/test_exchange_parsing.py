"""Reading officers' spreadsheets: headers in English or Chinese, CSV in UTF-8 or GB18030, XLSX
read safely; every bad row reported with its row and column; limits that hold."""

from __future__ import annotations

import io
import zipfile

import pytest

from liaison.errors import Invalid
from liaison.exchange import parsing
from liaison.exchange.parsing import (
    ColumnsNotFound,
    Declaration,
    Limits,
    SpreadsheetRefused,
    SpreadsheetTooLarge,
    parse_dataset,
)
from tests.exchange_support import (
    CHINESE_IMPORT_HEADERS,
    rows_of,
    sample,
    to_csv,
    to_xlsx,
    with_headers,
)

HEADER = ["container_no", "bill_of_lading", "hs_code", "net_mass_kg"]


def declarations(*rows: list[object], header: list[str] = HEADER) -> bytes:
    return to_csv([header, *rows])


# --- the sample files ---------------------------------------------------------------------------


def test_the_sample_files_read_without_a_bad_row() -> None:
    exports = parse_dataset(sample("exports_felixstowe.csv"), kind="export_declarations")
    imports = parse_dataset(sample("imports_nansha.csv"), kind="import_declarations")
    prohibited = parse_dataset(sample("prohibited_cn.csv"), kind="prohibited_list")
    allowed = parse_dataset(sample("allowed_export_uk.csv"), kind="allowed_list")

    assert (len(exports.rows), len(imports.rows)) == (120, 117)
    assert (len(prohibited.rows), len(allowed.rows)) == (12, 7)
    assert all(parsed.ok for parsed in (exports, imports, prohibited, allowed))
    assert exports.columns["reference"] == "declaration_id"
    assert imports.columns["port_of_discharge"] == "port"
    first = exports.rows[0]
    assert first == Declaration(
        row=2,
        container_no="CMAU3350033",
        bill_of_lading="FXT77446522",
        hs_code="72044910",
        net_mass_kg=15316.0,
        reference="GB26000000",
        date="2026-10-03",
        trader="Harwich Reclaim Co",
        partner="Pearl River Polymer Materials Co., Ltd.",
        description="Ferrous waste and scrap, other",
        port_of_loading="GBFXT",
        port_of_discharge="CNNSA",
    )
    assert prohibited.rows[10].hs_code == "854810"


def test_nansha_headers_in_chinese_are_recognised() -> None:
    data = to_csv(with_headers(sample("imports_nansha.csv"), CHINESE_IMPORT_HEADERS))
    english = parse_dataset(sample("imports_nansha.csv"), kind="import_declarations")

    chinese = parse_dataset(data, kind="import_declarations")

    assert chinese.ok
    assert chinese.columns["container_no"] == "集装箱号"
    assert chinese.columns["bill_of_lading"] == "提单号"
    assert chinese.columns["hs_code"] == "商品编码"
    assert chinese.columns["net_mass_kg"] == "净重（千克）"
    assert chinese.rows == english.rows


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gb18030", "utf-16"])
def test_csv_encodings_from_both_sides_are_recognised(encoding: str) -> None:
    rows = with_headers(sample("imports_nansha.csv"), CHINESE_IMPORT_HEADERS)
    rows[1][2] = "广州南沙再生资源有限公司"

    parsed = parse_dataset(to_csv(rows, encoding=encoding), kind="import_declarations")

    assert parsed.ok
    assert parsed.encoding == encoding
    assert parsed.rows[0].trader == "广州南沙再生资源有限公司"
    assert len(parsed.rows) == 117


def test_an_unknown_encoding_is_refused_with_advice() -> None:
    # (é then a line end is no GB18030 either; a Latin-1 é inside a word may read as GB18030)
    data = "hs_code,description\n3915,café\n".encode("latin-1")
    with pytest.raises(SpreadsheetRefused, match="UTF-8"):
        parse_dataset(data, kind="prohibited_list")


@pytest.mark.parametrize("delimiter", [";", "\t"])
def test_semicolon_and_tab_separated_files_read_the_same(delimiter: str) -> None:
    text = sample("exports_felixstowe.csv").decode()
    import csv

    rows = list(csv.reader(io.StringIO(text)))
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter).writerows(rows)

    parsed = parse_dataset(buffer.getvalue().encode(), kind="export_declarations")

    assert parsed.ok
    assert parsed.rows == parse_dataset(text.encode(), kind="export_declarations").rows


# --- XLSX --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("exports_felixstowe.csv", "export_declarations"),
        ("imports_nansha.csv", "import_declarations"),
        ("prohibited_cn.csv", "prohibited_list"),
        ("allowed_export_uk.csv", "allowed_list"),
    ],
)
def test_a_workbook_reads_exactly_as_the_same_csv(name: str, kind: str) -> None:
    from_csv = parse_dataset(sample(name), kind=kind)
    from_xlsx = parse_dataset(to_xlsx(sample(name)), kind=kind)

    assert from_xlsx.file_format == "xlsx"
    assert from_xlsx.ok
    assert from_xlsx.rows == from_csv.rows


def test_a_code_stored_as_a_number_gets_its_leading_zero_back() -> None:
    data = to_xlsx(
        to_csv([["hs_code", "description"], ["0301", "Live fish"], ["030111", "Ornamental"]])
    )
    parsed = parse_dataset(data, kind="prohibited_list")
    assert [entry.hs_code for entry in parsed.rows] == ["0301", "030111"]


def test_an_old_excel_workbook_is_refused_with_advice() -> None:
    with pytest.raises(SpreadsheetRefused, match="XLSX or CSV"):
        parse_dataset(parsing.OLE2_MAGIC + b"\x00" * 600, kind="prohibited_list")


def test_a_binary_file_is_refused() -> None:
    with pytest.raises(SpreadsheetRefused):
        parse_dataset(b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 100, kind="prohibited_list")


def test_a_broken_workbook_is_refused() -> None:
    with pytest.raises(SpreadsheetRefused):
        parse_dataset(parsing.ZIP_MAGIC + b"not really a zip", kind="prohibited_list")


def _replace_part(workbook: bytes, name: str, content: bytes) -> bytes:
    source = zipfile.ZipFile(io.BytesIO(workbook))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for item in source.infolist():
            if item.filename != name:
                target.writestr(item, source.read(item.filename))
        target.writestr(name, content)
    return out.getvalue()


def test_a_zip_bomb_is_refused_before_it_is_inflated() -> None:
    workbook = to_xlsx(sample("prohibited_cn.csv"))
    bomb = _replace_part(workbook, "xl/media/padding.bin", b"\x00" * (20 * 1024 * 1024))

    with pytest.raises(SpreadsheetTooLarge, match="expands"):
        parse_dataset(bomb, kind="prohibited_list")


def test_a_workbook_that_expands_past_the_total_limit_is_refused() -> None:
    workbook = to_xlsx(sample("prohibited_cn.csv"))
    with pytest.raises(SpreadsheetTooLarge, match="MiB"):
        parse_dataset(workbook, kind="prohibited_list", limits=Limits(max_uncompressed_bytes=1024))


def test_xml_entities_in_a_workbook_are_refused_not_expanded() -> None:
    laughs = (
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
        b'<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>'
        b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
        b'<row r="1"><c r="A1" t="inlineStr"><is><t>hs_code</t></is></c></row>'
        b'<row r="2"><c r="A2" t="inlineStr"><is><t>&lol3;</t></is></c></row>'
        b"</sheetData></worksheet>"
    )
    workbook = to_xlsx(sample("prohibited_cn.csv"))
    hostile = _replace_part(workbook, "xl/worksheets/sheet1.xml", laughs)

    with pytest.raises(SpreadsheetRefused):
        parse_dataset(hostile, kind="prohibited_list")


# --- limits ---------------------------------------------------------------------------------------


def test_too_many_rows_are_refused() -> None:
    data = to_csv([["hs_code"], *(["3915"] for _ in range(11))])
    with pytest.raises(SpreadsheetTooLarge, match="more than 10 rows"):
        parse_dataset(data, kind="prohibited_list", limits=Limits(max_rows=10))


def test_too_many_columns_are_refused() -> None:
    data = to_csv([["hs_code", *(f"c{n}" for n in range(20))], ["3915", *("x" * 20)]])
    with pytest.raises(SpreadsheetTooLarge, match="columns"):
        parse_dataset(data, kind="prohibited_list", limits=Limits(max_columns=10))


def test_a_cell_longer_than_the_limit_is_a_bad_row() -> None:
    data = to_csv([["hs_code", "description"], ["3915", "x" * 50], ["4707", "paper"]])
    parsed = parse_dataset(data, kind="prohibited_list", limits=Limits(max_cell_chars=20))
    assert [(e.row, e.column, e.code) for e in parsed.errors] == [
        (2, "description", "cell_too_long")
    ]
    assert [entry.hs_code for entry in parsed.rows] == ["4707"]


def test_an_empty_file_is_refused() -> None:
    with pytest.raises(SpreadsheetRefused, match="empty"):
        parse_dataset(b"\r\n\r\n", kind="prohibited_list")


# --- bad rows -------------------------------------------------------------------------------------


def test_every_bad_row_is_reported_with_its_row_and_column() -> None:
    data = declarations(
        ["CMAU3350033", "FXT1", "72044910", "15316"],  # row 2: fine
        ["CMAU3350034", "FXT2", "72044910", "100"],  # row 3: check digit
        ["CMAU335003", "FXT3", "72044910", "100"],  # row 4: not a container number
        ["MSKU6440390", "FXT4", "7204", "100"],  # row 5: HS code too short
        ["TGHU9744593", "FXT5", "47031100", "ten tonnes"],  # row 6: mass not a number
        ["CMAU3350033", "FXT6", "72044910", "200"],  # row 7: duplicate container
        ["COSU9190509", "", "47079010", "-5"],  # row 8: no B/L and a negative mass
        [],  # row 9: blank, skipped
        ["OOLU5679400", "FXT9", "76020000", "1,250.5"],  # row 10: fine (thousands separator)
    )

    parsed = parse_dataset(data, kind="export_declarations")

    assert not parsed.ok
    found = [(e.row, e.column, e.code) for e in parsed.errors]
    assert found == [
        (3, "container_no", "bad_check_digit"),
        (4, "container_no", "bad_container"),
        (5, "hs_code", "bad_hs_code"),
        (6, "net_mass_kg", "bad_mass"),
        (7, "container_no", "duplicate_container"),
        (8, "bill_of_lading", "missing"),
        (8, "net_mass_kg", "bad_mass"),
    ]
    assert parsed.error_count == 7
    assert "should end in 3" in parsed.errors[0].detail
    assert "row 2" in parsed.errors[4].detail
    assert [row.container_no for row in parsed.rows] == ["CMAU3350033", "OOLU5679400"]
    assert parsed.rows[1].net_mass_kg == 1250.5
    assert parsed.blank_rows == 1


def test_bad_rows_name_the_column_as_the_file_heads_it() -> None:
    header = ["集装箱号", "提单号", "商品编码", "净重（千克）"]
    data = declarations(["CMAU3350034", "FXT1", "72A", "x"], header=header)

    parsed = parse_dataset(data, kind="import_declarations")

    assert [(e.row, e.column, e.field) for e in parsed.errors] == [
        (2, "集装箱号", "container_no"),
        (2, "商品编码", "hs_code"),
        (2, "净重（千克）", "net_mass_kg"),
    ]


def test_bad_prefixes_in_a_list_are_reported() -> None:
    data = to_csv(
        [["hs_code", "description"], ["3915", "ok"], ["391", "odd"], ["", "none"], ["39.15", "dup"]]
    )
    parsed = parse_dataset(data, kind="prohibited_list")
    assert [(e.row, e.column, e.code) for e in parsed.errors] == [
        (3, "hs_code", "bad_hs_code"),
        (4, "hs_code", "missing"),
    ]
    assert [entry.hs_code for entry in parsed.rows] == ["3915"]  # the dotted repeat is kept once


def test_listed_errors_are_capped_but_all_counted() -> None:
    data = to_csv([["hs_code"], *(["x"] for _ in range(30))])
    parsed = parse_dataset(data, kind="prohibited_list", limits=Limits(max_listed_errors=5))
    assert len(parsed.errors) == 5
    assert parsed.error_count == 30


# --- the column mapping ---------------------------------------------------------------------------


def test_unrecognised_columns_are_named_with_the_files_headers() -> None:
    data = declarations(
        ["CMAU3350033", "FXT1", "72044910", "15316"], header=["Box", "Doc", "hs_code", "Kilos"]
    )

    with pytest.raises(ColumnsNotFound) as refused:
        parse_dataset(data, kind="export_declarations")

    assert refused.value.missing == ["container_no", "bill_of_lading", "net_mass_kg"]
    assert refused.value.headers == ["Box", "Doc", "hs_code", "Kilos"]


def test_the_uploader_maps_columns_the_file_heads_differently() -> None:
    data = declarations(
        ["CMAU3350033", "FXT1", "72044910", "15316"], header=["Box", "Doc", "hs_code", "Kilos"]
    )

    parsed = parse_dataset(
        data,
        kind="export_declarations",
        columns={"container_no": "box", "bill_of_lading": "Doc", "net_mass_kg": "Kilos"},
    )

    assert parsed.ok
    assert parsed.columns == {
        "container_no": "Box",
        "bill_of_lading": "Doc",
        "net_mass_kg": "Kilos",
        "hs_code": "hs_code",
    }
    assert parsed.rows[0].net_mass_kg == 15316.0


def test_a_mapping_to_a_header_the_file_lacks_is_refused() -> None:
    with pytest.raises(Invalid, match="no column headed"):
        parse_dataset(
            declarations(header=HEADER), kind="export_declarations", columns={"container_no": "Box"}
        )
    with pytest.raises(Invalid, match="not a column"):
        parse_dataset(declarations(header=HEADER), kind="prohibited_list", columns={"weight": "x"})


# --- what is stored -------------------------------------------------------------------------------


def test_checked_rows_survive_their_stored_form() -> None:
    parsed = parse_dataset(sample("exports_felixstowe.csv"), kind="export_declarations")
    kind, rows, errors = parsing.decode_rows(parsing.encode_rows(parsed))
    assert kind == "export_declarations"
    assert rows == parsed.rows
    assert errors == []
    assert rows_of(sample("exports_felixstowe.csv"))[1][4] == rows[0].container_no
