"""URL map. Each area of the app owns one routes module under liaison/routes/."""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("django-admin/", admin.site.urls),
    path("", include("liaison.routes.accounts")),
    path("", include("liaison.routes.groups")),
    path("", include("liaison.routes.messaging")),
    path("", include("liaison.routes.chat")),
    path("", include("liaison.routes.attachments")),
    path("", include("liaison.routes.auditing")),
    path("", include("liaison.routes.security")),
]

handler400 = "liaison.views.errors.bad_request"
handler403 = "liaison.views.errors.permission_denied"
handler404 = "liaison.views.errors.page_not_found"
handler500 = "liaison.views.errors.server_error"
