"""URL routes of the groups area."""

urlpatterns: list = []
