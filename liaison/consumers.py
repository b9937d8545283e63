"""WebSocket consumers. Thin: parse a frame, call a sync service, send the result."""

from __future__ import annotations

from channels.generic.websocket import AsyncJsonWebsocketConsumer


class RoomConsumer(AsyncJsonWebsocketConsumer):
    """Placeholder until the messaging protocol lands: refuses everyone."""

    async def connect(self) -> None:
        await self.close(code=4401)
