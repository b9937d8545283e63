"""WebSocket routes. Anything else under /ws/ is refused by the router."""

from django.urls import path

from liaison.realtime.consumer import RoomConsumer

websocket_urlpatterns = [
    path("ws/rooms/<int:room_id>/", RoomConsumer.as_asgi()),
]
