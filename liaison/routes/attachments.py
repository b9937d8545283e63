"""URL routes of the attachments area."""

urlpatterns: list = []
