"""Data for the exchange tests: the CFE solid-waste sample with its right answer, a generator
of declarations with a known answer of its own, and converters to the shapes officers upload
(XLSX, Chinese headers, GB18030).

The story: Olivia (uk_officer, HMRC) uploads Felixstowe's export declarations and the UK's
allowed-export list; Li Wei (gz_officer, Guangzhou Customs) uploads Nansha's import declarations
and China's prohibited-import list; either runs the comparison, and both read the summary in
the exercise's room.
"""

from __future__ import annotations

import csv
import io
import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from liaison.exchange import containers
from tests.conftest import point_storage

SAMPLE = Path(__file__).parent / "data" / "cfe-waste-sample"
OUTCOME_KEYS = (
    "matched",
    "weight_mismatch",
    "hs_mismatch",
    "export_only",
    "import_only",
    "prohibited_hits",
)


@pytest.fixture(autouse=True)
def store(settings: Any, tmp_path: Path) -> Path:
    """Each test gets an empty blob store of its own."""
    return point_storage(settings, "attachments", tmp_path / "attachments")


def sample(name: str) -> bytes:
    return (SAMPLE / name).read_bytes()


def expected() -> dict[str, Any]:
    return json.loads((SAMPLE / "expected.json").read_text())


SAMPLE_FILES = {
    "exports": ("exports_felixstowe.csv", "export_declarations"),
    "imports": ("imports_nansha.csv", "import_declarations"),
    "prohibited": ("prohibited_cn.csv", "prohibited_list"),
    "allowed": ("allowed_export_uk.csv", "allowed_list"),
}


# --- shapes officers upload --------------------------------------------------------------------

CHINESE_IMPORT_HEADERS = {
    "entry_no": "报关单号",
    "import_date": "进口日期",
    "importer": "收货人",
    "consignor": "境外发货人",
    "container_no": "集装箱号",
    "bill_of_lading": "提单号",
    "hs_code": "商品编码",
    "description": "商品名称",
    "net_mass_kg": "净重（千克）",
    "port": "进境口岸",
}


def rows_of(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))


def to_csv(rows: list[list[Any]], *, encoding: str = "utf-8") -> bytes:
    buffer = io.StringIO(newline="")
    csv.writer(buffer, lineterminator="\r\n").writerows(rows)
    return buffer.getvalue().encode(encoding)


def with_headers(data: bytes, renamed: dict[str, str]) -> list[list[str]]:
    rows = rows_of(data)
    rows[0] = [renamed.get(header, header) for header in rows[0]]
    return rows


def to_xlsx(data: bytes, *, numeric: tuple[str, ...] = ("hs_code", "net_mass_kg")) -> bytes:
    """The CSV as a workbook, as Excel would save it: codes and masses as numbers."""
    from openpyxl import Workbook

    rows = rows_of(data)
    header = rows[0]
    numeric_at = {index for index, name in enumerate(header) if name in numeric}
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(header)
    for row in rows[1:]:
        sheet.append(
            [
                (float(value) if "." in value else int(value))
                if index in numeric_at and value
                else value
                for index, value in enumerate(row)
            ]
        )
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


# --- a generated exercise with its own answer -------------------------------------------------------

EXPORT_HEADER = [
    "declaration_id",
    "export_date",
    "exporter",
    "consignee",
    "container_no",
    "bill_of_lading",
    "hs_code",
    "description",
    "net_mass_kg",
    "port_of_loading",
    "port_of_discharge",
]
IMPORT_HEADER = [
    "entry_no",
    "import_date",
    "importer",
    "consignor",
    "container_no",
    "bill_of_lading",
    "hs_code",
    "description",
    "net_mass_kg",
    "port",
]
PROHIBITED = ["3915", "4707", "854810", "2618"]
# Codes officers declare: some under a prohibited prefix, some beside one (854890 is not 854810).
HIT_CODES = ["39152000", "39159011", "47079010", "85481010", "26180000"]
CLEAN_CODES = ["72044910", "74040010", "76020000", "85489090", "39011010"]
OWNERS = ["MSK", "CMA", "COS", "OOL", "HLX", "TGH", "EGH", "MSC"]
KINDS = ["matched", "weight", "hs", "export_only", "import_only", "bl_differs", "boundary"]
KIND_WEIGHTS = [50, 12, 10, 8, 8, 4, 8]


@dataclass
class Generated:
    exports: list[list[Any]] = field(default_factory=list)
    imports: list[list[Any]] = field(default_factory=list)
    expected: dict[str, list[str]] = field(default_factory=lambda: {k: [] for k in OUTCOME_KEYS})

    def exports_csv(self, **kwargs: Any) -> bytes:
        return to_csv([EXPORT_HEADER, *self.exports], **kwargs)

    def imports_csv(self, **kwargs: Any) -> bytes:
        return to_csv([IMPORT_HEADER, *self.imports], **kwargs)

    @staticmethod
    def prohibited_csv() -> bytes:
        return to_csv([["hs_code", "description"], *([p, f"prohibited {p}"] for p in PROHIBITED)])


def _container(rng: random.Random, used: set[str]) -> str:
    while True:
        number = containers.with_check_digit(f"{rng.choice(OWNERS)}U{rng.randrange(10**6):06d}")
        if number not in used:
            used.add(number)
            return number


def _bill(rng: random.Random) -> str:
    return f"FXT{rng.randrange(10**8):08d}"


def generate(count: int = 600, seed: int = 17) -> Generated:
    """``count`` containers, each given an outcome at random, with the answer written down as
    the rows are made (rather than computed by the code under test)."""
    rng = random.Random(seed)
    result = Generated()
    used: set[str] = set()
    for number in range(count):
        kind = rng.choices(KINDS, KIND_WEIGHTS)[0]
        container = _container(rng, used)
        bill = _bill(rng)
        code = rng.choice(HIT_CODES + CLEAN_CODES)
        mass = 20 * rng.randrange(250, 1500)  # a multiple of 20: 5 % of it is whole kilograms
        export = [
            f"GB{seed:02d}{number:08d}",
            "2026-10-01",
            "Anglia Recycling Ltd",
            "Pearl River Polymer Materials Co., Ltd.",
            container,
            bill,
            code,
            "Waste for recovery",
            mass,
            "GBFXT",
            "CNNSA",
        ]

        def imported(
            code10: str,
            kilograms: float,
            bill_no: str = bill,
            box: str = container,
            entry: int = number,
        ) -> list[Any]:
            return [
                f"53162026{entry:08d}",
                "2026-11-01",
                "Lingnan Paper Industry Co., Ltd.",
                "Anglia Recycling Ltd",
                box,
                bill_no,
                code10,
                "废物",
                kilograms,
                "CNNSA",
            ]

        same6 = code[:6] + f"{rng.randrange(10**4):04d}"
        if kind == "import_only":
            result.imports.append(imported(same6, mass))
            result.expected["import_only"].append(container)
            continue
        result.exports.append(export)
        if any(code.startswith(prefix) for prefix in PROHIBITED):
            result.expected["prohibited_hits"].append(container)
        if kind == "export_only":
            result.expected["export_only"].append(container)
        elif kind == "bl_differs":
            result.imports.append(imported(same6, mass, bill_no=_bill(rng)))
            result.expected["export_only"].append(container)
            result.expected["import_only"].append(container)
        elif kind == "matched":
            within = rng.uniform(-0.049, 0.049)
            result.imports.append(imported(same6, round(mass * (1 + within))))
            result.expected["matched"].append(container)
        elif kind == "boundary":  # exactly 5 % off: still within the tolerance
            result.imports.append(imported(same6, mass + rng.choice([-1, 1]) * mass // 20))
            result.expected["matched"].append(container)
        elif kind == "weight":
            off = rng.uniform(0.06, 0.4) * rng.choice([-1, 1])
            result.imports.append(imported(same6, round(mass * (1 + off))))
            result.expected["weight_mismatch"].append(container)
        else:  # hs: another heading altogether
            other = rng.choice([c for c in HIT_CODES + CLEAN_CODES if c[:6] != code[:6]])
            result.imports.append(imported(other + "00", round(mass * rng.uniform(0.5, 1.5))))
            result.expected["hs_mismatch"].append(container)
    rng.shuffle(result.imports)
    for containers_ in result.expected.values():
        containers_.sort()
    return result
