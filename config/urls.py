"""The URL map: every HTTP route of the app, grouped by noun (the WebSocket routes live in
liaison/realtime/routing.py). Templates and tests reverse these names; keep them stable."""

from django.contrib import admin
from django.urls import path, re_path
from django.views.i18n import JavaScriptCatalog

from liaison import metrics
from liaison.views import (
    accounts,
    acknowledgements,
    attachments,
    attention,
    auditing,
    chat,
    exchange,
    exercises,
    health,
    home,
    invitations,
    markings,
    messages,
    profile,
    provisioning,
    reports,
    search,
    security,
    sessions,
)

urlpatterns = [
    path("django-admin/", admin.site.urls),
    path("", home.home, name="home"),
    path("healthz", health.healthz, name="healthz"),
    path("metrics", metrics.metrics_view, name="metrics"),
    # Accounts: signing in (password, then the second factor) and out.
    path("login/", accounts.login_view, name="login"),
    path("login/otp/", accounts.login_otp_view, name="login-otp"),
    path("logout/", accounts.logout_view, name="logout"),
    # Profile: name, time zone, language, e-mail notifications; the language switch; the
    # chat client's translations (a script file, as the CSP allows no inline script).
    path("account/profile/", profile.profile, name="profile"),
    path("i18n/language/", profile.set_language, name="set-language"),
    path(
        "jsi18n/",
        JavaScriptCatalog.as_view(domain="djangojs", packages=["liaison"]),
        name="javascript-catalog",
    ),
    # Sessions: signing in and out in JSON.
    path("api/v1/session", sessions.session, name="api-session"),
    # Security: two-factor set-up, the officer's sessions, password and recovery codes.
    path("account/2fa/setup/", security.enrol, name="security-enrol"),
    path("account/security/", security.security_page, name="security"),
    path(
        "account/security/sessions/<int:session_id>/revoke/",
        security.revoke_session,
        name="security-revoke-session",
    ),
    path(
        "account/security/sessions/end-others/",
        security.logout_everywhere,
        name="security-logout-everywhere",
    ),
    path("account/security/password/", security.change_password, name="security-password"),
    path(
        "account/security/recovery-codes/",
        security.regenerate_recovery_codes,
        name="security-recovery-codes",
    ),
    # Provisioning pages (admins; coordinators for invitations to their own exercise).
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
        "manage/exercises/<int:exercise_id>/markings/",
        markings.manage_markings,
        name="manage-exercise-markings",
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
    path(
        "manage/exercises/<int:exercise_id>/members/<int:membership_id>/reset-2fa/",
        provisioning.member_reset_two_factor,
        name="manage-member-reset-2fa",
    ),
    re_path(
        r"^manage/exercises/(?P<exercise_id>[0-9]+)/(?P<action>activate|close|archive)/$",
        provisioning.exercise_transition,
        name="manage-exercise-transition",
    ),
    re_path(
        r"^manage/exercises/(?P<exercise_id>[0-9]+)/legal-hold/(?P<action>set|lift)/$",
        provisioning.exercise_legal_hold,
        name="manage-exercise-legal-hold",
    ),
    path(
        "manage/exercises/<int:exercise_id>/waive-export/",
        provisioning.exercise_waive_export,
        name="manage-exercise-waive-export",
    ),
    # Invitations: the single-use link.
    path("invite/<str:token>/", invitations.accept, name="invite"),
    # Exercises API: exercises, their rooms, invitations and members.
    path("api/v1/exercises", exercises.exercises, name="api-exercises"),
    path("api/v1/exercises/<int:exercise_id>", exercises.exercise, name="api-exercise"),
    re_path(
        r"^api/v1/exercises/(?P<exercise_id>[0-9]+)/(?P<action>activate|close|archive)$",
        exercises.exercise_transition,
        name="api-exercise-transition",
    ),
    path("api/v1/exercises/<int:exercise_id>/rooms", exercises.rooms, name="api-rooms"),
    path(
        "api/v1/exercises/<int:exercise_id>/invitations",
        exercises.invitations,
        name="api-invitations",
    ),
    path(
        "api/v1/exercises/<int:exercise_id>/invitations/<int:invitation_id>/revoke",
        exercises.invitation_revoke,
        name="api-invitation-revoke",
    ),
    path("api/v1/exercises/<int:exercise_id>/members", exercises.members, name="api-members"),
    path(
        "api/v1/exercises/<int:exercise_id>/members/<int:user_id>",
        exercises.member,
        name="api-member",
    ),
    # Exchange: data sets and comparisons of an exercise (API, then the officers' pages).
    path("api/v1/exercises/<int:exercise_id>/datasets", exchange.datasets, name="api-datasets"),
    path("api/v1/datasets/<int:dataset_id>", exchange.dataset, name="api-dataset"),
    path(
        "api/v1/exercises/<int:exercise_id>/list-comparisons",
        exchange.list_comparisons,
        name="api-list-comparisons",
    ),
    path(
        "api/v1/exercises/<int:exercise_id>/comparisons",
        exchange.comparisons,
        name="api-comparisons",
    ),
    path("api/v1/comparisons/<int:comparison_id>", exchange.comparison, name="api-comparison"),
    path(
        "api/v1/comparisons/<int:comparison_id>/export",
        exchange.comparison_export,
        name="api-comparison-export",
    ),
    path("exercises/<int:exercise_id>/data/", exchange.exchange_page, name="exchange"),
    path(
        "exercises/<int:exercise_id>/data/upload/",
        exchange.exchange_upload,
        name="exchange-upload",
    ),
    path(
        "exercises/<int:exercise_id>/data/compare/",
        exchange.exchange_compare,
        name="exchange-compare",
    ),
    path("comparisons/<int:comparison_id>/", exchange.comparison_page, name="comparison"),
    path(
        "api/v1/comparisons/<int:comparison_id>/handover",
        exchange.comparison_handover,
        name="api-comparison-handover",
    ),
    path(
        "comparisons/<int:comparison_id>/handover/",
        exchange.comparison_handover_page,
        name="comparison-handover",
    ),
    # Seizure reports: posted into a room (API and form), exported for the whole exercise.
    path("api/v1/rooms/<int:room_id>/reports", reports.room_reports, name="api-room-reports"),
    path(
        "api/v1/exercises/<int:exercise_id>/reports",
        reports.exercise_reports,
        name="api-exercise-reports",
    ),
    path("rooms/<int:room_id>/report/", reports.report_form, name="room-report"),
    path(
        "exercises/<int:exercise_id>/data/reports.csv",
        reports.exercise_reports_download,
        name="exchange-reports",
    ),
    # Chat: the officers' room page.
    path("rooms/<int:room_id>/", chat.room_page, name="room"),
    # Messages over HTTP (the same services as the room WebSocket).
    path("api/v1/rooms/<int:room_id>/messages", messages.room_messages, name="api-room-messages"),
    path("api/v1/rooms/<int:room_id>/read", messages.room_read, name="api-room-read"),
    path("api/v1/unread", messages.unread, name="api-unread"),
    # Attention: acknowledging, counts per room, a room's notification settings, search.
    path(
        "api/v1/rooms/<int:room_id>/messages/<int:seq>/ack",
        acknowledgements.acknowledge,
        name="api-message-ack",
    ),
    path(
        "api/v1/rooms/<int:room_id>/messages/<int:seq>/reactions",
        acknowledgements.react,
        name="api-message-reactions",
    ),
    path("api/v1/attention", attention.counts, name="api-attention"),
    path("api/v1/search", search.api_search, name="api-search"),
    path(
        "api/v1/exercises/<int:exercise_id>/markings",
        markings.exercise_markings,
        name="api-exercise-markings",
    ),
    path("search/", search.search_page, name="search"),
    path(
        "api/v1/rooms/<int:room_id>/preferences",
        attention.room_preferences,
        name="api-room-preferences",
    ),
    # Attachments: streamed encrypted upload, verified download, thumbnails.
    path(
        "api/v1/rooms/<int:room_id>/attachments",
        attachments.upload,
        name="attachment-upload",
    ),
    path(
        "api/v1/attachments/<int:attachment_id>",
        attachments.download,
        name="attachment-download",
    ),
    path(
        "api/v1/attachments/<int:attachment_id>/thumbnail",
        attachments.thumbnail,
        name="attachment-thumbnail",
    ),
    # Auditing: the auditors' read-only workspace.
    path("audit/", auditing.index, name="audit-index"),
    path("audit/trail/", auditing.trail, name="audit-trail"),
    path("audit/verify/", auditing.verify, name="audit-verify"),
    path("audit/exercises/<int:exercise_id>/", auditing.exercise, name="audit-exercise"),
    path("audit/exercises/<int:exercise_id>/search/", auditing.search, name="audit-search"),
    path("audit/exercises/<int:exercise_id>/export/", auditing.export, name="audit-export"),
    path("audit/exports/", auditing.export_list, name="audit-exports"),
    path(
        "audit/exports/<int:export_id>/download",
        auditing.export_download,
        name="audit-export-download",
    ),
    path(
        "audit/exercises/<int:exercise_id>/acknowledgements.csv",
        acknowledgements.export,
        name="audit-acknowledgements",
    ),
    path("audit/rooms/<int:room_id>/", auditing.transcript, name="audit-transcript"),
]

handler400 = "liaison.views.errors.bad_request"
handler403 = "liaison.views.errors.permission_denied"
handler404 = "liaison.views.errors.page_not_found"
handler500 = "liaison.views.errors.server_error"
