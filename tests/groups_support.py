"""Helpers shared by the groups tests (exercises, invitations, memberships)."""

from __future__ import annotations

from typing import Any

from django.db.models import Max
from django.utils import timezone

from liaison.models import Agency, AuditEvent, Exercise, GroupRole, User
from tests.factories import MembershipFactory, UserFactory

# Everyone who must not provision, as conftest fixture names (plus the local removed coordinator).
NON_PROVISIONERS = [
    "uk_officer",
    "uk_coordinator",
    "gz_observer",
    "auditor",
    "outsider",
    "removed_coordinator",
]
# Everyone who must not invite to ``exercise`` (its coordinators may).
NON_INVITERS = ["uk_officer", "gz_observer", "auditor", "outsider", "removed_coordinator"]


def make_removed_coordinator(exercise: Exercise, agency: Agency) -> User:
    """A coordinator of ``exercise`` whose membership has ended."""
    user = UserFactory(
        email="former@hmrc.example", display_name="Former Coordinator", agency=agency
    )
    MembershipFactory(
        exercise=exercise, user=user, role=GroupRole.COORDINATOR, removed_at=timezone.now()
    )
    return user


class AuditWatch:
    """The audit events appended since this watch started."""

    def __init__(self) -> None:
        self.start = AuditEvent.objects.aggregate(top=Max("seq"))["top"] or 0

    def new(self) -> list[AuditEvent]:
        return list(AuditEvent.objects.filter(seq__gt=self.start).order_by("seq"))

    def actions(self) -> list[str]:
        return [event.action for event in self.new()]

    def only(
        self, action: str, *, actor: User | None, target: Any, exercise: Exercise | None
    ) -> AuditEvent:
        """Exactly one new event, this action, naming this actor, target and exercise."""
        events = self.new()
        assert [event.action for event in events] == [action]
        event = events[0]
        assert event.actor_id == (actor.pk if actor is not None else None)
        if isinstance(target, tuple):
            assert (event.target_type, event.target_id) == (target[0], str(target[1]))
        else:
            assert (event.target_type, event.target_id) == (
                target.__class__.__name__.lower(),
                str(target.pk),
            )
        assert event.exercise_id == (exercise.pk if exercise is not None else None)
        return event
