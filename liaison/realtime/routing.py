"""WebSocket routes. Any other path gets the same refusal as a forbidden room (4403, audited),
never a server error."""

from django.urls import path, re_path, register_converter

from liaison.realtime.attention import AttentionConsumer
from liaison.realtime.consumer import RoomConsumer
from liaison.realtime.refused import RefusedSocket

# Room ids are positive 64-bit integers (BigAutoField).
MAX_ROOM_ID = 2**63 - 1


class RoomIdConverter:
    """ASCII digits of a positive id the database can hold: ``<int:>`` matches 150 digits, and
    looking those up failed with an overflow (close 1011) instead of a refusal."""

    regex = "[0-9]{1,19}"

    def to_python(self, value: str) -> int:
        ident = int(value)
        if not 0 < ident <= MAX_ROOM_ID:
            raise ValueError("not a room id")
        return ident

    def to_url(self, value: int) -> str:
        return str(value)


register_converter(RoomIdConverter, "room_id")

websocket_urlpatterns = [
    path("ws/rooms/<room_id:room_id>/", RoomConsumer.as_asgi()),
    path("ws/attention/", AttentionConsumer.as_asgi()),
    re_path(r"", RefusedSocket.as_asgi()),
]
