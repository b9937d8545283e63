"""Invitations: the only way a new officer gets into an exercise.

An invitation is bound to one e-mail address and one participating agency, carries a group role,
expires, and works once. Only the SHA-256 of its token is stored: the raw token is handed out
once, at creation. Acceptance locks the invitation row, so two simultaneous acceptances give
exactly one membership. Every refused acceptance is audited in its own transaction.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import password_validation
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from liaison import audit
from liaison.access import can_manage_invitations
from liaison.errors import Conflict, Invalid, LiaisonError, PermissionDenied
from liaison.models import (
    Agency,
    Exercise,
    GroupRole,
    Invitation,
    Membership,
    Role,
    User,
)
from liaison.services.exercises import lock_exercise, require_writable
from liaison.services.invitation_links import (
    TOKEN_BYTES,
    hash_token,
    invitation_url,
    send_invitation_email,
)

logger = logging.getLogger(__name__)

MAX_TTL_HOURS = 30 * 24
INVITATION_STATES = ("pending", "accepted", "expired", "revoked")
# Said for every unusable link alike (unknown, used, revoked, expired, closed exercise): the
# holder learns nothing about the exercise or why.
INVALID_LINK_DETAIL = gettext_lazy(
    "This invitation link is not valid. It may be mistyped, already used, withdrawn or out of "
    "date. Ask the person who invited you for a new invitation."
)
STATE_LABELS = {
    "pending": gettext_lazy("pending"),
    "accepted": gettext_lazy("accepted"),
    "expired": gettext_lazy("expired"),
    "revoked": gettext_lazy("revoked"),
}


class InvitationRefused(LiaisonError):
    """This invitation link is not valid."""

    code = "invitation_invalid"
    http_status = 404
    default_detail = gettext_lazy("This invitation link is not valid.")

    # Reasons that must look exactly alike to the person holding the link.
    OPAQUE_REASONS = frozenset({"unknown", "accepted", "revoked", "expired", "exercise_closed"})

    def __init__(
        self,
        reason: str,
        *,
        invitation: Invitation | None = None,
        detail: str = "",
    ) -> None:
        super().__init__(detail or INVALID_LINK_DETAIL)
        self.reason = reason
        self.invitation = invitation

    @property
    def is_opaque(self) -> bool:
        return self.reason in self.OPAQUE_REASONS


class SignInRequired(LiaisonError):
    """An account with this e-mail address exists: sign in first, then open the link again."""

    code = "sign_in_required"
    http_status = 409
    default_detail = gettext_lazy(
        "An account with this e-mail address exists: sign in first, then open the link again."
    )


@dataclass(frozen=True)
class IssuedInvitation:
    """A new invitation and its raw token: the only moment the token exists outside the link."""

    invitation: Invitation
    token: str
    url: str
    emailed: bool = False
    email_error: str = ""


def _clean_email(email: str) -> str:
    value = (email or "").strip().lower()
    try:
        validate_email(value)
    except ValidationError:
        raise Invalid(
            _("%(value)s is not a valid e-mail address.") % {"value": repr(value[:254])},
            field="email",
        ) from None
    return value


def _clean_role(role: str) -> str:
    if role not in GroupRole.values:
        raise Invalid(
            _("Unknown role %(value)s: use one of %(values)s.")
            % {"value": repr(str(role)[:32]), "values": ", ".join(GroupRole.values)},
            field="role",
        )
    return role


def _clean_ttl_hours(ttl_hours: int | None) -> int:
    hours = settings.LIAISON_INVITATION_TTL_HOURS if ttl_hours is None else ttl_hours
    if isinstance(hours, bool) or not isinstance(hours, int) or not 1 <= hours <= MAX_TTL_HOURS:
        raise Invalid(
            _("An invitation lasts from 1 to %(max_ttl_hours)s hours.")
            % {"max_ttl_hours": MAX_TTL_HOURS},
            field="ttl_hours",
        )
    return hours


# --- creating and revoking --------------------------------------------------------------------


def create_invitation(
    *,
    actor: User,
    exercise: Exercise,
    email: str,
    agency: Agency,
    role: str = GroupRole.MEMBER,
    ttl_hours: int | None = None,
    send_email: bool = False,
    base_url: str | None = None,
    ip: str | None = None,
) -> IssuedInvitation:
    """Invite one officer of a participating agency; returns the raw token (shown once).

    Admins may invite to any exercise, coordinators to their own and never as coordinator.
    The e-mail, when asked for, leaves after the commit; if it fails the invitation stands and
    the caller is told so (the link can still be passed on by hand).
    """
    if not can_manage_invitations(actor, exercise):
        raise PermissionDenied(
            _("Only administrators and this exercise's coordinators can invite officers.")
        )
    role = _clean_role(role)
    if role == GroupRole.COORDINATOR and not actor.is_admin:
        raise PermissionDenied(_("Only administrators can invite coordinators."))
    email = _clean_email(email)
    hours = _clean_ttl_hours(ttl_hours)
    token = secrets.token_urlsafe(TOKEN_BYTES)
    with transaction.atomic():
        exercise = lock_exercise(exercise)
        require_writable(exercise)
        if not exercise.agencies.filter(pk=agency.pk).exists():
            raise Invalid(
                _("%(name)s does not take part in exercise %(code)s.")
                % {"name": agency.name, "code": exercise.code},
                field="agency",
            )
        existing = User.objects.filter(email=email).select_related("agency").first()
        if existing is not None:
            if existing.role != Role.OFFICER:
                raise Invalid(
                    _("%(email)s is an %(role)s account: only officers join exercises.")
                    % {"email": email, "role": existing.get_role_display().lower()},
                    field="email",
                )
            if existing.agency_id != agency.pk:
                held_by = existing.agency.name if existing.agency else "no agency"
                raise Invalid(
                    _("%(email)s belongs to %(held_by)s, not %(name)s.")
                    % {"email": email, "held_by": held_by, "name": agency.name},
                    field="agency",
                )
            if Membership.objects.filter(
                exercise=exercise, user=existing, removed_at__isnull=True
            ).exists():
                raise Conflict(
                    _("%(email)s is already a member of %(code)s.")
                    % {"email": email, "code": exercise.code},
                    field="email",
                )
        now = timezone.now()
        pending = Invitation.objects.filter(
            exercise=exercise,
            email=email,
            accepted_at__isnull=True,
            revoked_at__isnull=True,
            expires_at__gt=now,
        ).first()
        if pending is not None:
            raise Conflict(
                _(
                    "%(email)s already has a pending invitation to %(code)s: revoke it to send a new "
                    "one."
                )
                % {"email": email, "code": exercise.code},
                field="email",
            )
        invitation = Invitation.objects.create(
            exercise=exercise,
            email=email,
            agency=agency,
            role=role,
            token_hash=hash_token(token),
            created_by=actor,
            created_at=now,
            expires_at=now + dt.timedelta(hours=hours),
        )
        audit.record(
            actor=actor,
            action="invitation.created",
            target=invitation,
            exercise=exercise,
            ip=ip,
            email=email,
            agency=agency.code,
            role=role,
            expires_at=invitation.expires_at.isoformat(),
            email_requested=bool(send_email),
        )
    url = invitation_url(token, base_url=base_url)
    if not send_email:
        return IssuedInvitation(invitation=invitation, token=token, url=url)
    try:
        send_invitation_email(invitation=invitation, exercise=exercise, actor=actor, url=url)
    except Exception as error:  # SMTP trouble must not lose the invitation already recorded
        logger.warning("invitation %s: e-mail to the invitee failed: %s", invitation.pk, error)
        return IssuedInvitation(
            invitation=invitation,
            token=token,
            url=url,
            emailed=False,
            email_error=_("The e-mail could not be sent. Pass the link on by another channel."),
        )
    return IssuedInvitation(invitation=invitation, token=token, url=url, emailed=True)


def revoke_invitation(*, actor: User, invitation: Invitation, ip: str | None = None) -> Invitation:
    """Withdraw a pending invitation; its link stops working at once."""
    if not can_manage_invitations(actor, invitation.exercise):
        raise PermissionDenied(
            _("Only administrators and this exercise's coordinators can revoke invitations.")
        )
    with transaction.atomic():
        invitation = Invitation.objects.select_for_update().get(pk=invitation.pk)
        exercise = lock_exercise(invitation.exercise)
        require_writable(exercise)
        state = invitation.state
        if state != "pending":
            raise Conflict(
                _("This invitation is already %(state)s: only a pending one can be revoked.")
                % {"state": STATE_LABELS.get(state, state)}
            )
        invitation.revoked_at = timezone.now()
        invitation.revoked_by = actor
        invitation.save(update_fields=["revoked_at", "revoked_by"])
        audit.record(
            actor=actor,
            action="invitation.revoked",
            target=invitation,
            exercise=exercise,
            ip=ip,
            email=invitation.email,
        )
    return invitation


# --- accepting ------------------------------------------------------------------------------


def find_usable_invitation(token: str) -> Invitation | None:
    """The pending invitation behind a token, or None for any link that cannot be used."""
    if not token or len(token) > 200:
        return None
    invitation = (
        Invitation.objects.select_related("exercise", "agency")
        .filter(token_hash=hash_token(token))
        .first()
    )
    if invitation is None or invitation.state != "pending" or not invitation.exercise.is_writable:
        return None
    return invitation


def account_exists_for(invitation: Invitation) -> bool:
    return User.objects.filter(email=invitation.email).exists()


def _refuse_unless_usable(invitation: Invitation | None, exercise: Exercise | None) -> None:
    if invitation is None or exercise is None:
        raise InvitationRefused("unknown")
    state = invitation.state
    if state != "pending":
        raise InvitationRefused(state, invitation=invitation)
    if not exercise.is_writable:
        raise InvitationRefused("exercise_closed", invitation=invitation)


def _refuse_unless_matches(invitation: Invitation, user: User) -> None:
    if user.email.lower() != invitation.email.lower():
        raise InvitationRefused(
            "email_mismatch",
            invitation=invitation,
            detail=(
                _(
                    "This invitation was sent to a different e-mail address than the one you are "
                    "signed in with. Sign out, then open the link again."
                )
            ),
        )
    unusable = _(
        "This invitation cannot be used with your account. Ask the person who invited you."
    )
    if not user.is_active or user.role != Role.OFFICER:
        raise InvitationRefused("not_officer", invitation=invitation, detail=unusable)
    if user.agency_id != invitation.agency_id:
        raise InvitationRefused("agency_mismatch", invitation=invitation, detail=unusable)
    if Membership.objects.filter(
        exercise_id=invitation.exercise_id, user=user, removed_at__isnull=True
    ).exists():
        raise InvitationRefused(
            "already_member",
            invitation=invitation,
            detail=_("You are already a member of this exercise."),
        )


def _new_officer(*, invitation: Invitation, display_name: str, password: str) -> User:
    display_name = " ".join((display_name or "").split())
    if not display_name:
        raise Invalid(_("Enter the name other officers will see."), field="display_name")
    if len(display_name) > 120:
        raise Invalid(_("The name is longer than 120 characters."), field="display_name")
    candidate = User(
        email=invitation.email,
        display_name=display_name,
        agency=invitation.agency,
        role=Role.OFFICER,
        time_zone=invitation.agency.time_zone,
    )
    try:
        password_validation.validate_password(password or "", user=candidate)
    except ValidationError as error:
        raise Invalid(" ".join(error.messages), field="password") from None
    return User.objects.create_user(
        invitation.email,
        password,
        display_name=display_name,
        agency=invitation.agency,
        role=Role.OFFICER,
        time_zone=invitation.agency.time_zone,
    )


def accept_invitation(
    *,
    token: str,
    user: User | None = None,
    display_name: str = "",
    password: str = "",
    ip: str | None = None,
) -> Membership:
    """Use an invitation once: the signed-in ``user`` joins, or (``user`` None) a new officer
    account is created with the invited e-mail, the given name and password, and joins.

    Holds the invitation row under SELECT ... FOR UPDATE until the membership is committed, so a
    second acceptance waits and then finds the invitation used. A refusal raises
    ``InvitationRefused`` and is audited in its own transaction; form mistakes raise ``Invalid``.
    """
    if user is not None and not user.is_authenticated:
        user = None
    try:
        with transaction.atomic():
            invitation = None
            if token and len(token) <= 200:
                invitation = (
                    Invitation.objects.select_for_update()
                    .select_related("agency")
                    .filter(token_hash=hash_token(token))
                    .first()
                )
            exercise = (
                Exercise.objects.select_for_update().get(pk=invitation.exercise_id)
                if invitation is not None
                else None
            )
            _refuse_unless_usable(invitation, exercise)
            new_account = user is None
            if user is None:
                if User.objects.filter(email=invitation.email).exists():
                    raise SignInRequired()
                user = _new_officer(
                    invitation=invitation, display_name=display_name, password=password
                )
            else:
                _refuse_unless_matches(invitation, user)
            now = timezone.now()
            try:
                with transaction.atomic():
                    membership = Membership.objects.create(
                        exercise=exercise,
                        user=user,
                        role=invitation.role,
                        added_by=invitation.created_by,
                        created_at=now,
                    )
            except IntegrityError:  # joined by another route meanwhile
                raise InvitationRefused(
                    "already_member",
                    invitation=invitation,
                    detail=_("You are already a member of this exercise."),
                ) from None
            invitation.accepted_at = now
            invitation.accepted_by = user
            invitation.save(update_fields=["accepted_at", "accepted_by"])
            audit.record(
                actor=user,
                action="invitation.accepted",
                target=invitation,
                exercise=exercise,
                ip=ip,
                membership_id=membership.pk,
                role=invitation.role,
                new_account=new_account,
            )
            return membership
    except InvitationRefused as refusal:
        refused = refusal.invitation
        with transaction.atomic():
            audit.record(
                actor=user if user is not None and user.pk else None,
                action="invitation.refused",
                target=refused if refused is not None else None,
                exercise=refused.exercise if refused is not None else None,
                ip=ip,
                reason=refusal.reason,
            )
        raise


# --- reads ------------------------------------------------------------------------------------


def invitations_of(exercise: Exercise, *, state: str | None = None) -> list[Invitation]:
    """An exercise's invitations, newest first, optionally only those in one state."""
    if state is not None and state not in INVITATION_STATES:
        raise Invalid(
            _("Unknown invitation state %(state)s: use one of %(values)s.")
            % {"state": repr(state[:20]), "values": ", ".join(INVITATION_STATES)},
            field="state",
        )
    rows = list(
        Invitation.objects.filter(exercise=exercise)
        .select_related("agency", "created_by", "accepted_by", "revoked_by")
        .order_by("-created_at", "-pk")
    )
    return [row for row in rows if state is None or row.state == state]
