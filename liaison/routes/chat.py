"""URL routes of the officers' chat pages."""

from django.urls import path

from liaison.views import chat

urlpatterns = [
    path("rooms/<int:room_id>/", chat.room_page, name="room"),
]
