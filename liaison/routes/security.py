"""URL routes of the security area."""

urlpatterns: list = []
