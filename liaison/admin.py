"""Django admin for superusers: a read-only window on the records.

Every change to an account's role or standing, an exercise, a room, an invitation, a membership
or a message has to go through its service, which checks the rule, writes the audit row and
tells open sockets (a membership removed here would leave no trace and keep its sockets open).
So these models are view-only here; the changes are made on Liaison's own pages under /manage/
and with the management commands (``exercise``, ``invite``, ``members``, ``reset_2fa``, ``keys``).
"""

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin

from liaison.models import Agency, AuditEvent, Exercise, Invitation, Membership, Message, Room, User


class ReadOnlyAdmin(admin.ModelAdmin):
    """View only: no add, change or delete (and so no bulk delete action)."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(User)
class UserAdmin(ReadOnlyAdmin, BaseUserAdmin):
    """Accounts come from invitations; their role, standing and second factor change through
    the services (``manage.py reset_2fa``, the provisioning pages), never here."""

    ordering = ["email"]
    list_display = ["email", "display_name", "agency", "role", "is_active"]
    list_filter = ["role", "agency", "is_active"]
    search_fields = ["email", "display_name"]
    fieldsets = [
        (None, {"fields": ["email"]}),
        ("Profile", {"fields": ["display_name", "agency", "role", "time_zone", "language"]}),
        ("Permissions", {"fields": ["is_active", "is_staff", "is_superuser"]}),
        ("Dates", {"fields": ["last_login", "date_joined"]}),
    ]


@admin.register(Agency)
class AgencyAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "country", "time_zone"]


@admin.register(Exercise)
class ExerciseAdmin(ReadOnlyAdmin):
    """Its life at a glance; the hold and the export waiver are set on /manage/ (audited)."""

    list_display = [
        "code",
        "title",
        "status",
        "starts_at",
        "ends_at",
        "closed_at",
        "archived_at",
        "shredded_at",
        "retention_days",
        "legal_hold",
        "export_waived_at",
        "history_visibility",
    ]
    list_filter = ["status", "legal_hold", "history_visibility"]


@admin.register(Room)
class RoomAdmin(ReadOnlyAdmin):
    list_display = ["name", "exercise", "title", "last_seq"]
    list_filter = ["exercise"]
    exclude = ["chain_head"]


@admin.register(Membership)
class MembershipAdmin(ReadOnlyAdmin):
    list_display = ["user", "exercise", "role", "created_at", "removed_at"]
    list_filter = ["exercise", "role"]


@admin.register(Invitation)
class InvitationAdmin(ReadOnlyAdmin):
    list_display = ["email", "exercise", "agency", "role", "created_at", "expires_at"]
    list_filter = ["exercise"]
    exclude = ["token_hash"]


@admin.register(Message)
class MessageAdmin(ReadOnlyAdmin):
    """Metadata only: the body is ciphertext, and auditors read it in their workspace, where
    each read is audited."""

    list_display = ["room", "seq", "sender", "kind", "created_at", "deleted_at"]
    list_filter = ["room__exercise"]
    fields = ["room", "seq", "sender", "kind", "created_at", "edited_at", "deleted_at"]


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ["seq", "created_at", "actor_label", "action", "target_type", "target_id"]
