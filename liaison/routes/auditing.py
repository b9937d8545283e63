"""URL routes of the auditing area: the auditors' workspace under /audit/."""

from django.urls import path

from liaison.views import auditing

urlpatterns = [
    path("audit/", auditing.index, name="audit-index"),
    path("audit/trail/", auditing.trail, name="audit-trail"),
    path("audit/verify/", auditing.verify, name="audit-verify"),
    path("audit/exercises/<int:exercise_id>/", auditing.exercise, name="audit-exercise"),
    path("audit/exercises/<int:exercise_id>/search/", auditing.search, name="audit-search"),
    path("audit/exercises/<int:exercise_id>/export/", auditing.export, name="audit-export"),
    path("audit/rooms/<int:room_id>/", auditing.transcript, name="audit-transcript"),
]
