"""Shared plumbing of the provisioning commands (exercise, invite, members): who acts, how
arguments name things, and how results print."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from liaison.models import Agency, Exercise, Role, User


def add_common_arguments(parser: CommandParser) -> None:
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")
    parser.add_argument(
        "--actor",
        metavar="EMAIL",
        help="the administrator recorded as acting (default: the first administrator)",
    )


def resolve_actor(email: str | None) -> User:
    """The admin the audit log names for this command."""
    admins = User.objects.filter(role=Role.ADMIN, is_active=True)
    if email:
        actor = admins.filter(email=email.strip().lower()).first()
        if actor is None:
            raise CommandError(f"--actor {email}: no active administrator has this address.")
        return actor
    actor = admins.order_by("date_joined", "pk").first()
    if actor is None:
        raise CommandError(
            "No active administrator exists to act as: create one first "
            "(manage.py createsuperuser)."
        )
    return actor


def exercise_by_code(code: str) -> Exercise:
    exercise = Exercise.objects.filter(code=(code or "").strip().upper()).first()
    if exercise is None:
        raise CommandError(f"No exercise has the code {code!r}.")
    return exercise


def agency_by_code(code: str) -> Agency:
    agency = Agency.objects.filter(code=(code or "").strip().lower()).first()
    if agency is None:
        known = ", ".join(Agency.objects.order_by("code").values_list("code", flat=True))
        raise CommandError(f"No agency has the code {code!r} (known: {known or 'none'}).")
    return agency


def user_by_email(email: str) -> User:
    user = User.objects.filter(email=(email or "").strip().lower()).first()
    if user is None:
        raise CommandError(f"No account uses the e-mail address {email!r}.")
    return user


def parse_when(value: str, *, option: str) -> dt.datetime:
    """An ISO 8601 date or date-time; without an offset it is read as UTC."""
    parsed = parse_datetime(value or "")
    if parsed is None:
        day = parse_date(value or "")
        if day is None:
            raise CommandError(
                f"{option} {value!r}: use an ISO 8601 date or date-time, like 2026-07-01 or "
                "2026-07-01T08:00+01:00."
            )
        parsed = dt.datetime.combine(day, dt.time.min)
    if timezone.is_naive(parsed):
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed


def emit(command: BaseCommand, as_json: bool, payload: Any, text: str) -> None:
    if as_json:
        command.stdout.write(json.dumps(payload, indent=2, ensure_ascii=False))
    else:
        command.stdout.write(text)
