"""Reading a CSV's cells: its encoding (UTF-8, UTF-16, GB18030) and delimiter recognised."""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterator, Sequence
from typing import Any

from django.utils.translation import gettext as _

from liaison.exchange.dataset import (
    Limits,
    SpreadsheetRefused,
)


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


def csv_rows(data: bytes, limits: Limits) -> tuple[Iterator[list[Any]], str]:
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
