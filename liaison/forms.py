"""HTML forms. They only parse and present input; the rules live in the services, whose
errors are put back on the form field they name (``add_service_error``)."""

from __future__ import annotations

import re
from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from liaison.errors import LiaisonError
from liaison.models import Agency, Exercise, GroupRole, HistoryVisibility


def split_list(value: str, *, lines_only: bool = False) -> list[str]:
    """Items separated by new lines (and, unless ``lines_only``, commas or spaces)."""
    pattern = r"[\r\n]+" if lines_only else r"[\s,;]+"
    return [item.strip() for item in re.split(pattern, value or "") if item.strip()]


def add_service_error(form: forms.Form, error: LiaisonError) -> None:
    """Show a service's refusal next to the field it names, or above the form."""
    field = error.field if error.field in form.fields else None
    form.add_error(field, error.detail)


class DateTimeLocalInput(forms.DateTimeInput):
    input_type = "datetime-local"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(format="%Y-%m-%dT%H:%M", **kwargs)


class ExerciseForm(forms.Form):
    """Create or edit an exercise. Times are read in the admin's own time zone."""

    code = forms.CharField(
        label=_("Code"),
        max_length=40,
        help_text=_("Letters, digits and hyphens, like CFE-2026-07."),
        widget=forms.TextInput(attrs={"autocomplete": "off", "placeholder": "CFE-2026-07"}),
    )
    title = forms.CharField(label=_("Title"), max_length=200)
    commodity_focus = forms.CharField(label=_("Commodity focus"), max_length=200, required=False)
    hs_codes = forms.CharField(
        label=_("HS code prefixes"),
        required=False,
        help_text=_("Separated by commas or spaces, like 3915, 4707, 7204."),
    )
    lanes = forms.CharField(
        label=_("Lanes"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("One per line, like Felixstowe–Nansha sea lane."),
    )
    agencies = forms.ModelMultipleChoiceField(
        queryset=Agency.objects.order_by("name"),
        widget=forms.CheckboxSelectMultiple,
        label=_("Participating agencies"),
    )
    starts_at = forms.DateTimeField(label=_("Starts"), widget=DateTimeLocalInput())
    ends_at = forms.DateTimeField(label=_("Ends"), widget=DateTimeLocalInput())
    retention_days = forms.IntegerField(
        label=_("Retention (days)"),
        initial=365,
        help_text=_("How long its content is kept after it closes."),
    )

    @classmethod
    def initial_for(cls, exercise: Exercise) -> dict[str, Any]:
        return {
            "code": exercise.code,
            "title": exercise.title,
            "commodity_focus": exercise.commodity_focus,
            "hs_codes": ", ".join(exercise.hs_codes),
            "lanes": "\n".join(exercise.lanes),
            "agencies": list(exercise.agencies.all()),
            "starts_at": exercise.starts_at,
            "ends_at": exercise.ends_at,
            "retention_days": exercise.retention_days,
        }

    def service_arguments(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {
            "code": data["code"],
            "title": data["title"],
            "commodity_focus": data["commodity_focus"],
            "hs_codes": split_list(data["hs_codes"]),
            "lanes": split_list(data["lanes"], lines_only=True),
            "agencies": list(data["agencies"]),
            "starts_at": data["starts_at"],
            "ends_at": data["ends_at"],
            "retention_days": data["retention_days"],
        }


class NewExerciseForm(ExerciseForm):
    """Creating an exercise also fixes what members who join late may read."""

    history_visibility = forms.ChoiceField(
        label=_("History for new members"),
        choices=HistoryVisibility.choices,
        initial=HistoryVisibility.SHARED,
        required=False,
        widget=forms.RadioSelect,
        help_text=_("Chosen once: it cannot be changed after the exercise is created."),
    )

    def service_arguments(self) -> dict[str, Any]:
        return {
            **super().service_arguments(),
            "history_visibility": self.cleaned_data["history_visibility"]
            or HistoryVisibility.SHARED,
        }


class RoomForm(forms.Form):
    name = forms.CharField(
        label=_("Name"),
        max_length=64,
        help_text=_("Lower-case letters, digits and hyphens, like felixstowe-nansha."),
        widget=forms.TextInput(attrs={"placeholder": "felixstowe-nansha"}),
    )
    title = forms.CharField(label=_("Title"), max_length=200, required=False)
    topic = forms.CharField(label=_("Topic"), max_length=500, required=False)


class InvitationForm(forms.Form):
    email = forms.EmailField(label=_("E-mail"))
    agency = forms.ModelChoiceField(
        label=_("Agency"), queryset=Agency.objects.none(), empty_label=None
    )
    role = forms.ChoiceField(label=_("Role"), choices=GroupRole.choices, initial=GroupRole.MEMBER)
    send_email = forms.BooleanField(
        label=_("Also send the link by e-mail"), required=False, initial=False
    )

    def __init__(self, *args: Any, exercise: Exercise, allow_coordinator: bool, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.fields["agency"].queryset = exercise.agencies.order_by("name")
        if not allow_coordinator:
            self.fields["role"].choices = [
                choice for choice in GroupRole.choices if choice[0] != GroupRole.COORDINATOR
            ]


class RoleForm(forms.Form):
    role = forms.ChoiceField(label=_("Role"), choices=GroupRole.choices)


class NewOfficerForm(forms.Form):
    """A new officer accepting an invitation: the name others see and a password."""

    display_name = forms.CharField(
        label=_("Your name as other officers will see it"),
        max_length=120,
        widget=forms.TextInput(attrs={"autocomplete": "name"}),
    )
    password1 = forms.CharField(
        label=_("Password"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text=_("At least 12 characters; not a common or an all-digit password."),
    )
    password2 = forms.CharField(
        label=_("Password again"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("password1") and data.get("password1") != data.get("password2"):
            self.add_error("password2", _("The two passwords differ."))
        return data

    def add_service_error(self, error: LiaisonError) -> None:
        field = {"password": "password1"}.get(error.field or "", error.field)
        self.add_error(field if field in self.fields else None, error.detail)


class ProfileForm(forms.Form):
    """What an officer controls about their own account (rules in services/accounts.py)."""

    display_name = forms.CharField(
        label=_("Your name as other officers see it"),
        max_length=120,
        widget=forms.TextInput(attrs={"autocomplete": "name"}),
    )
    time_zone = forms.CharField(
        label=_("Time zone"),
        max_length=64,
        help_text=_("Type to search, for example London or Shanghai."),
        widget=forms.TextInput(
            attrs={"list": "time-zones", "autocomplete": "off", "spellcheck": "false"}
        ),
    )
    language = forms.ChoiceField(label=_("Language"), required=False)
    email_notifications = forms.BooleanField(
        label=_("Send me e-mail about activity in my exercises"), required=False
    )

    def __init__(self, *args: Any, languages: dict[str, str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["language"].choices = [
            ("", _("Same as my browser")),
            *languages.items(),
        ]
