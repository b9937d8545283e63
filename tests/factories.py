"""factory_boy factories for the domain. Tests that exercise a rule go through the services;
factories only lay out the world a test starts from."""

from __future__ import annotations

import datetime as dt

import factory
from django.utils import timezone

from liaison.models import (
    Agency,
    Exercise,
    ExerciseStatus,
    GroupRole,
    Membership,
    Role,
    Room,
    User,
)

DEFAULT_PASSWORD = "correct-horse-battery-staple-42"


class AgencyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Agency
        django_get_or_create = ("code",)

    code = factory.Sequence(lambda n: f"agency-{n}")
    name = factory.Sequence(lambda n: f"Agency {n}")
    country = "GB"
    time_zone = "Europe/London"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ("email",)
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"officer{n}@example.org")
    display_name = factory.Sequence(lambda n: f"Officer {n}")
    agency = factory.SubFactory(AgencyFactory)
    role = Role.OFFICER
    time_zone = "Europe/London"

    @factory.post_generation
    def password(self, create: bool, extracted: str | None, **kwargs: object) -> None:
        self.set_password(extracted or DEFAULT_PASSWORD)
        if create:
            self.save(update_fields=["password"])


class ExerciseFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Exercise
        django_get_or_create = ("code",)
        skip_postgeneration_save = True

    code = factory.Sequence(lambda n: f"CFE-TEST-{n:03d}")
    title = factory.Sequence(lambda n: f"Test exercise {n}")
    commodity_focus = "Solid waste"
    hs_codes = ["3915", "4707", "7204"]
    lanes = ["Felixstowe–Nansha"]
    starts_at = factory.LazyFunction(lambda: timezone.now() - dt.timedelta(days=1))
    ends_at = factory.LazyFunction(lambda: timezone.now() + dt.timedelta(days=30))
    status = ExerciseStatus.ACTIVE
    created_by = factory.SubFactory(UserFactory, role=Role.ADMIN)

    @factory.post_generation
    def agencies(self, create: bool, extracted: list[Agency] | None, **kwargs: object) -> None:
        if create and extracted:
            self.agencies.set(extracted)


class RoomFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Room
        django_get_or_create = ("exercise", "name")

    exercise = factory.SubFactory(ExerciseFactory)
    name = "general"
    title = "General"


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    exercise = factory.SubFactory(ExerciseFactory)
    user = factory.SubFactory(UserFactory)
    role = GroupRole.MEMBER
