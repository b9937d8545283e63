"""Compile the translation catalogues (``.po`` → ``.mo``) in pure Python.

Django's own ``compilemessages`` needs GNU gettext's ``msgfmt``, which a fresh machine with only
Python lacks; ``make run`` and ``make test`` call this instead. Like ``msgfmt``, fuzzy and
untranslated entries are left out of the compiled file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polib
from django.conf import settings
from django.core.management.base import BaseCommand


def catalogues() -> list[Path]:
    """Every ``.po`` file under the project's locale folders."""
    found: list[Path] = []
    for folder in settings.LOCALE_PATHS:
        found.extend(sorted(Path(folder).glob("*/LC_MESSAGES/*.po")))
    return found


def compile_catalogue(po_path: Path) -> Path:
    mo_path = po_path.with_suffix(".mo")
    polib.pofile(str(po_path)).save_as_mofile(str(mo_path))
    return mo_path


class Command(BaseCommand):
    help = "Compile the .po translation catalogues to .mo files (no GNU gettext needed)."
    requires_system_checks: list[str] = []

    def handle(self, *args: Any, **options: Any) -> None:
        for po_path in catalogues():
            mo_path = compile_catalogue(po_path)
            if options["verbosity"] > 1:
                self.stdout.write(f"compiled {mo_path}")
        self.stdout.write(f"translation catalogues compiled: {len(catalogues())}")
