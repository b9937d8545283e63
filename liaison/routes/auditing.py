"""URL routes of the auditing area."""

urlpatterns: list = []
