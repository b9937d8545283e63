"""URL routes of the security area: two-factor set-up, the security page, the JSON session."""

from django.urls import path

from liaison.views import api_session, security

urlpatterns = [
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
    path("api/v1/session", api_session.session, name="api-session"),
]
