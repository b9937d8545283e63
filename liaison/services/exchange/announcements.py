"""The room's system message about a comparison, in the languages of both sides."""

from __future__ import annotations

from typing import Any

from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _

from liaison.exchange import comparison as compare
from liaison.models import (
    Comparison,
    ComparisonKind,
    MessageKind,
)
from liaison.services import messaging

# The languages of the exercise's two sides: the room summary is written in both.
SUMMARY_LANGUAGES = ("en", "zh-hans")


def _sentence(comparison: Comparison, state: str) -> str:
    """One language's line about a comparison (the active one)."""
    values: dict[str, Any] = {"id": comparison.pk}
    if comparison.kind == ComparisonKind.LIST:
        count = comparison.summary.get("overlap", 0)
        return _(
            "List comparison #%(id)s: %(count)s HS prefixes the allowed-export list shares "
            "with the prohibited-import list."
        ) % {**values, "count": count}
    if state == "started":
        values.update(
            exports=comparison.exports.rows if comparison.exports else 0,
            imports=comparison.imports.rows if comparison.imports else 0,
        )
        return (
            _(
                "Mirror comparison #%(id)s started (%(exports)s exports against %(imports)s "
                "imports); its summary follows here when it is done."
            )
            % values
        )
    if state == "failed":
        return _("Mirror comparison #%(id)s failed; run it again.") % values
    summary = comparison.summary
    values.update(
        matched=summary.get(compare.MATCHED, 0),
        weight=summary.get(compare.WEIGHT_MISMATCH, 0),
        hs=summary.get(compare.HS_MISMATCH, 0),
        export_only=summary.get(compare.EXPORT_ONLY, 0),
        import_only=summary.get(compare.IMPORT_ONLY, 0),
        prohibited=summary.get(compare.PROHIBITED_HITS, 0),
    )
    return (
        _(
            "Mirror comparison #%(id)s: %(matched)s matched, %(weight)s weight mismatch, "
            "%(hs)s HS mismatch, %(export_only)s export only, %(import_only)s import only, "
            "%(prohibited)s prohibited-list hits."
        )
        % values
    )


def summary_text(comparison: Comparison, state: str = "done") -> str:
    """The room's message about a comparison: one line per language of the exercise's two
    sides, and where the full result is."""
    lines: list[str] = []
    for language in SUMMARY_LANGUAGES:
        with translation.override(language):
            line = _sentence(comparison, state)
        if line not in lines:
            lines.append(line)
    lines.append(reverse("comparison", args=[comparison.pk]))
    return "\n".join(lines)


def announce(comparison: Comparison, state: str) -> None:
    """A system message in the exercise's first room, posted as the officer who ran it."""
    messaging.send_message(
        sender=comparison.run_by,
        room_id=comparison.key_room_id,
        client_id=f"comparison-{comparison.pk}-{state}",
        body=summary_text(comparison, state),
        kind=MessageKind.SYSTEM,
    )


# --- reading results ------------------------------------------------------------------------------------
