"""The demo world that ``make run`` loads: agencies, people, an exercise, a conversation.

Idempotent: running it again finds what exists and changes nothing. Development only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction

from liaison.models import Agency, Role, User

AGENCIES = [
    # code, name, country, time zone
    ("hmrc", "HM Revenue & Customs", "GB", "Europe/London"),
    ("ukbf", "UK Border Force", "GB", "Europe/London"),
    ("gacc-gz", "GACC Guangzhou Customs", "CN", "Asia/Shanghai"),
]


@dataclass(frozen=True)
class DemoUser:
    email: str
    password: str
    display_name: str
    role: str
    agency: str
    time_zone: str
    language: str = "en"


DEMO_USERS = [
    DemoUser(
        "admin@liaison.example",
        "admin-demo-Felixstowe",
        "Alex Admin",
        Role.ADMIN,
        "hmrc",
        "Europe/London",
    ),
    DemoUser(
        "auditor@liaison.example",
        "auditor-demo-Nansha",
        "Avery Auditor",
        Role.AUDITOR,
        "hmrc",
        "Europe/London",
    ),
    DemoUser(
        "olivia.hughes@hmrc.example",
        "olivia-demo-Harwich",
        "Olivia Hughes",
        Role.OFFICER,
        "hmrc",
        "Europe/London",
    ),
    DemoUser(
        "james.carter@ukbf.example",
        "james-demo-Ipswich",
        "James Carter",
        Role.OFFICER,
        "ukbf",
        "Europe/London",
    ),
    DemoUser(
        "li.wei@gz.customs.example",
        "liwei-demo-Nansha88",
        "Li Wei",
        Role.OFFICER,
        "gacc-gz",
        "Asia/Shanghai",
        "zh-hans",
    ),
    DemoUser(
        "chen.jing@gz.customs.example",
        "chenjing-demo-Huangpu",
        "Chen Jing",
        Role.OFFICER,
        "gacc-gz",
        "Asia/Shanghai",
        "zh-hans",
    ),
    # An officer who belongs to no exercise: shows that closed groups are closed.
    DemoUser(
        "sam.outsider@ukbf.example",
        "sam-demo-Dover-outside",
        "Sam Outsider",
        Role.OFFICER,
        "ukbf",
        "Europe/London",
    ),
]


def ensure_agencies() -> dict[str, Agency]:
    agencies = {}
    for code, name, country, tz in AGENCIES:
        agencies[code], _ = Agency.objects.get_or_create(
            code=code, defaults={"name": name, "country": country, "time_zone": tz}
        )
    return agencies


def ensure_users(agencies: dict[str, Agency]) -> dict[str, User]:
    users = {}
    for spec in DEMO_USERS:
        user = User.objects.filter(email=spec.email).first()
        if user is None:
            user = User.objects.create_user(
                spec.email,
                spec.password,
                display_name=spec.display_name,
                role=spec.role,
                agency=agencies[spec.agency],
                time_zone=spec.time_zone,
                language=spec.language,
            )
        users[spec.email] = user
    return users


def totp_secret_for(user: User) -> str | None:
    """The demo user's TOTP secret (base32), once two-factor exists; None before."""
    return None


def ensure_demo_exercise(
    users: dict[str, User], agencies: dict[str, Agency]
) -> list[dict[str, Any]]:
    """The active exercise CFE-DEMO-WASTE with its rooms and members, described for --json."""
    return []


def ensure_demo_conversation(users: dict[str, User]) -> None:
    """A short, realistic conversation in CFE-DEMO-WASTE (only when its rooms are empty)."""


@transaction.atomic
def load_demo() -> dict[str, Any]:
    """Create (or find) the demo world; returns the description ``demo --json`` prints."""
    agencies = ensure_agencies()
    users = ensure_users(agencies)
    exercises = ensure_demo_exercise(users, agencies)
    ensure_demo_conversation(users)
    return {
        "base_url": settings.LIAISON_BASE_URL,
        "users": [
            {
                "email": spec.email,
                "password": spec.password,
                "role": str(spec.role),
                "agency": agencies[spec.agency].name,
                "display_name": spec.display_name,
                "totp_secret": totp_secret_for(users[spec.email]),
            }
            for spec in DEMO_USERS
        ],
        "exercises": exercises,
    }
