"""URL routes of the attachments area."""

from django.urls import path

from liaison.views import attachments

urlpatterns = [
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
]
