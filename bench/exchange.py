"""Benchmark the exchange: reading and mirror-comparing 100,000 exports against 100,000 imports.

Goal (issue 17): the comparison of 100,000 x 100,000 rows in under 5 s on this machine, with its
peak memory printed. Also prints what surrounds it in the product: reading both CSV files (and,
with ``--xlsx``, the imports as a workbook), building the side-by-side rows and encoding the
result as it is stored. Pure computation: no database, no store, no keys.
"""

from __future__ import annotations

import csv
import io
import json
import random
import time
from collections.abc import Callable
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from bench.memory import PeakRss
from liaison.exchange import comparison as compare
from liaison.exchange import containers, parsing
from liaison.services.exchange import bulk_work

GOAL_SECONDS = 5.0
OWNERS = ["MSK", "CMA", "COS", "OOL", "HLX", "TGH", "EGH", "MSC", "APL", "ONE"]
CODES = ["39152000", "47079010", "72044910", "74040010", "76020000", "85481010", "26180000"]
PROHIBITED = ["3915", "4707", "5103", "5202", "6310", "2618", "2619", "2620", "3825", "4004"]


def generate(rows: int, seed: int = 6346) -> tuple[bytes, bytes]:
    """Exports and imports CSV of ``rows`` declarations each, most of them pairing up, some
    off in mass or code, some on one side only (shuffled, as a real import file is)."""
    rng = random.Random(seed)
    exports = io.StringIO(newline="")
    imports = io.StringIO(newline="")
    out_e, out_i = csv.writer(exports), csv.writer(imports)
    out_e.writerow(
        ["declaration_id", "exporter", "container_no", "bill_of_lading", "hs_code", "net_mass_kg"]
    )
    header = ["entry_no", "importer", "集装箱号", "提单号", "商品编码", "净重（千克）"]
    import_rows: list[list[Any]] = []
    for number in range(rows):
        owner = OWNERS[number % len(OWNERS)]
        container = containers.with_check_digit(f"{owner}U{number // len(OWNERS):06d}")
        bill = f"FXT{number:08d}"
        code = rng.choice(CODES)
        mass = rng.randrange(5_000, 28_000)
        out_e.writerow([f"GB{number:010d}", "Anglia Recycling Ltd", container, bill, code, mass])
        roll = rng.random()
        if roll < 0.03:
            continue  # export only
        if roll < 0.05:  # import only: another container
            container = containers.with_check_digit(f"ZZZU{number % 10**6:06d}")
        icode = code + "00" if roll > 0.07 else rng.choice(CODES) + "00"
        imass = mass if roll > 0.10 else int(mass * 1.2)
        import_rows.append([f"5316{number:012d}", "南沙再生资源", container, bill, icode, imass])
    rng.shuffle(import_rows)
    out_i.writerow(header)
    out_i.writerows(import_rows)
    return exports.getvalue().encode(), imports.getvalue().encode("gb18030")


def _timed(run: Callable[[], Any]) -> tuple[Any, float, PeakRss]:
    """Time one step as the product runs it (``bulk_work``: no collector passes meanwhile)."""
    with PeakRss() as peak, bulk_work():
        started = time.perf_counter()
        result = run()
        seconds = time.perf_counter() - started
    return result, seconds, peak


def _mib(peak: PeakRss) -> str:
    growth = peak.growth_mib
    return "n/a" if growth is None else f"{growth:,.0f} MiB"


class Command(BaseCommand):
    help = "Benchmark reading and mirror-comparing 100,000 x 100,000 declarations."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--rows", type=int, default=100_000, help="declarations per side")
        parser.add_argument("--rounds", type=int, default=3, help="comparison rounds (best kept)")
        parser.add_argument(
            "--xlsx", action="store_true", help="also read the imports as a workbook (slow)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        rows = options["rows"]
        write = self.stdout.write
        write(f"Liaison exchange benchmark: {rows:,} exports against {rows:,} imports.")
        exports_csv, imports_csv = generate(rows)
        write(
            f"  files: exports {len(exports_csv) / 1e6:.1f} MB (UTF-8), imports "
            f"{len(imports_csv) / 1e6:.1f} MB (GB18030, Chinese headers)"
        )
        exports, read_e, peak_e = _timed(
            lambda: parsing.parse_dataset(exports_csv, kind="export_declarations")
        )
        imports, read_i, peak_i = _timed(
            lambda: parsing.parse_dataset(imports_csv, kind="import_declarations")
        )
        assert exports.ok
        assert imports.ok
        write(f"  read exports CSV   {read_e:6.2f} s   peak RSS growth {_mib(peak_e)}")
        write(f"  read imports CSV   {read_i:6.2f} s   peak RSS growth {_mib(peak_i)}")
        stored = parsing.encode_rows(exports), parsing.encode_rows(imports)
        _, reread, peak_r = _timed(lambda: [parsing.decode_rows(data) for data in stored])
        write(
            f"  stored rows back   {reread:6.2f} s   peak RSS growth {_mib(peak_r)}"
            f"   (both sides, as a comparison reads them)"
        )
        if options["xlsx"]:
            self._workbook(imports_csv, rows)
        best, peak_c, result = float("inf"), None, None
        for _ in range(max(1, options["rounds"])):
            result = None  # the previous round's result is freed before the next is measured
            result, seconds, peak = _timed(
                lambda: compare.compare_declarations(
                    exports.rows, imports.rows, prohibited=PROHIBITED
                )
            )
            best = min(best, seconds)
            peak_c = peak_c or peak  # the first round's growth: later rounds reuse its memory
        assert result is not None
        assert peak_c is not None
        write(
            f"  compare            {best:6.2f} s   peak RSS growth {_mib(peak_c)}"
            f"   (best of {max(1, options['rounds'])}; memory of the first)"
        )
        summary = ", ".join(f"{name} {count:,}" for name, count in result.summary.items())
        write(f"    {summary}")
        encoded, encode_s, peak_j = _timed(
            lambda: json.dumps(
                {"rows": [compare.pairing_row(p) for p in result.pairings]},
                ensure_ascii=False,
                separators=(",", ":"),
            ).encode()
        )
        write(
            f"  side by side, JSON {encode_s:6.2f} s   peak RSS growth {_mib(peak_j)}"
            f"   ({len(encoded) / 1e6:.0f} MB stored, sealed)"
        )
        total = reread + best + encode_s
        write(f"  a comparison as the service runs it (read back, compare, encode): {total:.2f} s")
        verdict = "PASS" if best < GOAL_SECONDS else "FAIL"
        write(f"{verdict}: comparison {best:.2f} s (goal under {GOAL_SECONDS:.0f} s)")

    def _workbook(self, imports_csv: bytes, rows: int) -> None:
        from openpyxl import Workbook

        workbook = Workbook(write_only=True)
        sheet = workbook.create_sheet()
        for line in csv.reader(io.StringIO(imports_csv.decode("gb18030"))):
            sheet.append(line)
        buffer = io.BytesIO()
        workbook.save(buffer)
        data = buffer.getvalue()
        parsed, seconds, peak = _timed(
            lambda: parsing.parse_dataset(data, kind="import_declarations")
        )
        assert parsed.ok
        self.stdout.write(
            f"  read imports XLSX  {seconds:6.2f} s   peak RSS growth {_mib(peak)}"
            f"   ({len(data) / 1e6:.1f} MB workbook)"
        )
