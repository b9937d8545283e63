"""Recognising a file's columns by their headers (English or Chinese) or the uploader's mapping."""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from liaison.errors import Invalid
from liaison.exchange.dataset import (
    ALLOWED_LIST,
    EXPORT_DECLARATIONS,
    IMPORT_DECLARATIONS,
    PROHIBITED_LIST,
    ColumnsNotFound,
)


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
