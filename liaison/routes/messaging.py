"""URL routes of the messaging area (the WebSocket lives in liaison/routing.py)."""

from django.urls import path

from liaison.views import messages

urlpatterns = [
    path("api/v1/rooms/<int:room_id>/messages", messages.room_messages, name="api-room-messages"),
    path("api/v1/rooms/<int:room_id>/read", messages.room_read, name="api-room-read"),
    path("api/v1/unread", messages.unread, name="api-unread"),
]
