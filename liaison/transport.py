"""WebSocket transport behaviour that daphne does not expose as an option.

daphne's Autobahn factory keeps Autobahn's default ``failByDrop``: a frame over
``--websocket-max-message-size`` then drops the TCP connection, and the client sees 1006
instead of the 1009 the protocol promises (docs/api/websocket.md). Turning it off makes
Autobahn fail such a connection with a proper close frame (1009, "message too big").
"""

from __future__ import annotations

from typing import Any


def close_oversized_frames_with_1009() -> None:
    """Make daphne's WebSocket factory close failed connections with a close frame.

    Idempotent; takes effect for servers created after the call (the daphne command line and
    ``daphne.testing.DaphneProcess`` both load the application first).
    """
    from daphne.ws_protocol import WebSocketFactory

    if getattr(WebSocketFactory, "liaison_clean_failures", False):
        return
    original_init = WebSocketFactory.__init__

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        self.setProtocolOptions(failByDrop=False)

    WebSocketFactory.__init__ = __init__
    WebSocketFactory.liaison_clean_failures = True
