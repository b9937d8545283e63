"""URL routes of the messaging area."""

urlpatterns: list = []
