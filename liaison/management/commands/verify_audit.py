"""``manage.py verify_audit``: the same as ``manage.py audit verify``, under its older name."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from liaison.management.commands.audit import VERIFY_HELP, add_verify_arguments, run_verify


class Command(BaseCommand):
    help = VERIFY_HELP

    def add_arguments(self, parser: CommandParser) -> None:
        add_verify_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        run_verify(self, options)
