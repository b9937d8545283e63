"""URL routes of the officers' chat pages."""

urlpatterns: list = []
