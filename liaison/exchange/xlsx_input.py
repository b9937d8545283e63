"""Reading an untrusted XLSX workbook's cells, its ZIP directory checked against limits first."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator, Sequence
from typing import Any

from django.utils.translation import gettext as _

from liaison.exchange.dataset import (
    Limits,
    SpreadsheetRefused,
    SpreadsheetTooLarge,
)


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


def xlsx_rows(data: bytes, limits: Limits) -> Iterator[Sequence[Any]]:
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
