"""URL routes of the groups area: provisioning pages, invitation links, the exercises API."""

from django.urls import path, re_path

from liaison.views import api, invitations, provisioning

urlpatterns = [
    # Provisioning (admins; coordinators for invitations to their own exercise).
    path("manage/", provisioning.exercise_list, name="manage"),
    path("manage/exercises/new/", provisioning.exercise_create, name="manage-exercise-new"),
    path(
        "manage/exercises/<int:exercise_id>/",
        provisioning.exercise_detail,
        name="manage-exercise",
    ),
    path(
        "manage/exercises/<int:exercise_id>/edit/",
        provisioning.exercise_edit,
        name="manage-exercise-edit",
    ),
    path(
        "manage/exercises/<int:exercise_id>/rooms/",
        provisioning.room_create,
        name="manage-room-new",
    ),
    path(
        "manage/exercises/<int:exercise_id>/invitations/",
        provisioning.invitation_create,
        name="manage-invitation-new",
    ),
    path(
        "manage/exercises/<int:exercise_id>/invitations/<int:invitation_id>/revoke/",
        provisioning.invitation_revoke,
        name="manage-invitation-revoke",
    ),
    path(
        "manage/exercises/<int:exercise_id>/members/<int:membership_id>/remove/",
        provisioning.member_remove,
        name="manage-member-remove",
    ),
    path(
        "manage/exercises/<int:exercise_id>/members/<int:membership_id>/role/",
        provisioning.member_role,
        name="manage-member-role",
    ),
    re_path(
        r"^manage/exercises/(?P<exercise_id>[0-9]+)/(?P<action>activate|close|archive)/$",
        provisioning.exercise_transition,
        name="manage-exercise-transition",
    ),
    # The invitation link.
    path("invite/<str:token>/", invitations.accept, name="invite"),
    # JSON API.
    path("api/v1/exercises", api.exercises, name="api-exercises"),
    path("api/v1/exercises/<int:exercise_id>", api.exercise, name="api-exercise"),
    path("api/v1/exercises/<int:exercise_id>/rooms", api.rooms, name="api-rooms"),
    path(
        "api/v1/exercises/<int:exercise_id>/invitations",
        api.invitations,
        name="api-invitations",
    ),
    path(
        "api/v1/exercises/<int:exercise_id>/invitations/<int:invitation_id>/revoke",
        api.invitation_revoke,
        name="api-invitation-revoke",
    ),
    path("api/v1/exercises/<int:exercise_id>/members", api.members, name="api-members"),
    path(
        "api/v1/exercises/<int:exercise_id>/members/<int:user_id>",
        api.member,
        name="api-member",
    ),
    re_path(
        r"^api/v1/exercises/(?P<exercise_id>[0-9]+)/(?P<action>activate|close|archive)$",
        api.exercise_transition,
        name="api-exercise-transition",
    ),
]
