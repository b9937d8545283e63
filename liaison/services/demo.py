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


# --- the demo exercise and its members (provisioning) ---
DEMO_EXERCISE_CODE = "CFE-DEMO-WASTE"
# The four demo officers; one UK officer coordinates. sam.outsider@ukbf.example is left out.
DEMO_MEMBERS = [
    ("james.carter@ukbf.example", "coordinator"),
    ("olivia.hughes@hmrc.example", "member"),
    ("li.wei@gz.customs.example", "member"),
    ("chen.jing@gz.customs.example", "member"),
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


def ensure_demo_devices(users: dict[str, User]) -> None:
    """A confirmed authenticator for every demo user, so ``demo --json`` can print the secrets
    and ``demo --otp EMAIL`` the current codes (two-factor is mandatory)."""
    from liaison.services.twofactor import create_demo_device, has_two_factor

    for user in users.values():
        if not has_two_factor(user):
            create_demo_device(user=user)


def totp_secret_for(user: User) -> str | None:
    """The demo user's TOTP secret (base32) of their confirmed authenticator; None if none."""
    from liaison.services.twofactor import confirmed_device, secret_base32

    device = confirmed_device(user)
    return secret_base32(device) if device is not None else None


def current_demo_code(email: str) -> str:
    """A sign-in code the demo account ``email`` can use right now (``demo --otp EMAIL``), so the
    demo can be tried without an authenticator app. Demo accounts only."""
    from liaison.errors import Invalid
    from liaison.services.twofactor import code_for, confirmed_device

    email = (email or "").strip().lower()
    if email not in {spec.email for spec in DEMO_USERS}:
        raise Invalid(f"{email or 'That'} is not a demo account; codes are printed only for those.")
    user = User.objects.filter(email=email).first()
    device = confirmed_device(user) if user is not None else None
    if device is None:
        raise Invalid(
            f"{email} has no authenticator yet: run `make run` "
            "(or `.venv/bin/python manage.py demo`) first."
        )
    code = code_for(device)
    if code is None:
        raise Invalid("The current and the next code were both used already: try again in 30 s.")
    return code


def ensure_demo_exercise(
    users: dict[str, User], agencies: dict[str, Agency]
) -> list[dict[str, Any]]:
    """The active exercise CFE-DEMO-WASTE with its rooms and members, described for --json.

    Built through the provisioning services (so the audit log tells how it came to be); each
    step runs only if its result is missing. The outsider stays outside.
    """
    import datetime as dt

    from django.utils import timezone

    from liaison.models import Exercise, ExerciseStatus, Membership, Room
    from liaison.services import exercises as exercise_service
    from liaison.services import memberships as membership_service
    from liaison.services import rooms as room_service

    admin = users["admin@liaison.example"]
    exercise = Exercise.objects.filter(code=DEMO_EXERCISE_CODE).first()
    if exercise is None:
        now = timezone.now().replace(minute=0, second=0, microsecond=0)
        exercise = exercise_service.create_exercise(
            actor=admin,
            code=DEMO_EXERCISE_CODE,
            title="Plastic and paper waste, Felixstowe to Nansha",
            commodity_focus="Solid waste: plastic, paper and metal scrap",
            hs_codes=["3915", "4707", "7204"],
            lanes=["Felixstowe–Nansha sea lane"],
            agencies=[agencies["hmrc"], agencies["ukbf"], agencies["gacc-gz"]],
            starts_at=now - dt.timedelta(days=7),
            ends_at=now + dt.timedelta(days=60),
            retention_days=365,
        )
    if not Room.objects.filter(exercise=exercise, name="felixstowe-nansha").exists():
        room_service.add_room(
            actor=admin,
            exercise=exercise,
            name="felixstowe-nansha",
            title="Felixstowe–Nansha",
            topic="Containers on the Felixstowe to Nansha sea lane",
        )
    if exercise.status == ExerciseStatus.DRAFT:
        exercise = exercise_service.activate_exercise(actor=admin, exercise=exercise)
    for email, role in DEMO_MEMBERS:
        if (
            exercise.is_writable
            and not Membership.objects.filter(
                exercise=exercise, user=users[email], removed_at__isnull=True
            ).exists()
        ):
            membership_service.add_member(
                actor=admin, exercise=exercise, user=users[email], role=role
            )
    members = (
        Membership.objects.filter(exercise=exercise, removed_at__isnull=True)
        .order_by("created_at", "pk")
        .values_list("user__email", flat=True)
    )
    return [
        {
            "id": exercise.pk,
            "code": exercise.code,
            "status": exercise.status,
            "members": list(members),
            "rooms": [
                {"id": room.pk, "name": room.name}
                for room in Room.objects.filter(exercise=exercise).order_by("pk")
            ],
        }
    ]


# --- the demo conversation (messaging) ---
# (room, sender e-mail, kind, reply_to seq, body)
DEMO_CONVERSATION = [
    (
        "general",
        "james.carter@ukbf.example",
        "text",
        None,
        "Good morning all, and welcome to CFE-DEMO-WASTE. This room is for coordination; "
        "container-level detail goes in felixstowe-nansha.",
    ),
    (
        "general",
        "li.wei@gz.customs.example",
        "text",
        None,
        "早上好！Good afternoon from Nansha. The GACC Guangzhou team is online; we will post "
        "this week's import declarations by 17:00 Beijing time.",
    ),
    (
        "general",
        "olivia.hughes@hmrc.example",
        "text",
        2,
        "Thanks, Li Wei. HMRC has the Felixstowe export declarations ready and will upload the "
        "CSV after the morning briefing.",
    ),
    (
        "general",
        "chen.jing@gz.customs.example",
        "text",
        None,
        "收到。我们会按 HS 3915、4707 和 7204 核对两边的申报。\n"
        "(Received. We will compare both sides' declarations against HS 3915, 4707 and 7204.)",
    ),
    (
        "felixstowe-nansha",
        "olivia.hughes@hmrc.example",
        "text",
        None,
        "Container MSKU 7710322, B/L FXTNSA240611: declared at Felixstowe as HS 4707.90 mixed "
        "paper, 24,300 kg, vessel due at Nansha on the 18th.",
    ),
    (
        "felixstowe-nansha",
        "li.wei@gz.customs.example",
        "text",
        1,
        "Our import manifest shows the same container at 27,900 kg: 3.6 t more than declared. "
        "We will put it through the scanner on arrival.",
    ),
    (
        "felixstowe-nansha",
        "chen.jing@gz.customs.example",
        "alert",
        None,
        "初步判断：该批货物可能混有塑料废料（HS 3915），属于禁止进口的固体废物。\n"
        "Preliminary view: plastic waste may be mixed in (HS 3915), which China prohibits.",
    ),
    (
        "felixstowe-nansha",
        "james.carter@ukbf.example",
        "text",
        None,
        "Noted. UK Border Force will check the exporter's Annex VII waste shipment form and "
        "site licence today. Please hold the container until we confirm.",
    ),
    (
        "felixstowe-nansha",
        "li.wei@gz.customs.example",
        "text",
        4,
        "好的，we will hold it at the Nansha terminal and share the X-ray images here.",
    ),
    (
        "felixstowe-nansha",
        "olivia.hughes@hmrc.example",
        "text",
        None,
        "Two more containers from the same exporter (TGHU 5531870, CMAU 4418265) leave "
        "Felixstowe on Friday; flagging them for joint review.",
    ),
]


def ensure_demo_conversation(users: dict[str, User]) -> None:
    """A short, realistic conversation in CFE-DEMO-WASTE (only when its rooms are empty).

    Sent through the messaging service, so it is sealed, chained and audited like any other.
    Nothing happens while the demo exercise or its rooms do not exist or are not active.
    """
    from liaison.errors import LiaisonError
    from liaison.models import Exercise, ExerciseStatus, Room
    from liaison.services.messaging import send_message

    exercise = Exercise.objects.filter(code="CFE-DEMO-WASTE").first()
    if exercise is None or exercise.status != ExerciseStatus.ACTIVE:
        return
    rooms = {room.name: room for room in Room.objects.filter(exercise=exercise)}
    empty = {name for name, room in rooms.items() if room.last_seq == 0}
    for index, (room_name, email, kind, reply_to, body) in enumerate(DEMO_CONVERSATION, 1):
        sender = users.get(email)
        if room_name not in empty or sender is None:
            continue
        try:
            send_message(
                sender=sender,
                room_id=rooms[room_name].pk,
                client_id=f"demo-{index:02d}",
                body=body,
                kind=kind,
                reply_to=reply_to,
            )
        except LiaisonError:  # a demo officer who is no longer a member stays silent
            continue


@transaction.atomic
def load_demo() -> dict[str, Any]:
    """Create (or find) the demo world; returns the description ``demo --json`` prints."""
    agencies = ensure_agencies()
    users = ensure_users(agencies)
    ensure_demo_devices(users)
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
