"""Daphne patches 8 to 10 (what each is for: ``server.py``'s docstring): per-connection work
that no connection needed, the debug text nobody reads, frames for clients that have gone, and
pings more often than idle sockets need. Applied by ``server.tune_daphne``."""

from __future__ import annotations

import functools
import pprint
from typing import Any


class _ShownLater:
    """The text ``render(value)`` would give, built only when it is shown (patch 8)."""

    __slots__ = ("render", "value")

    def __init__(self, render: Any, value: Any) -> None:
        self.render = render
        self.value = value

    def __str__(self) -> str:
        return str(self.render(self.value))

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)


def format_debug_text_only_when_shown() -> bool:
    """Patch 8: Autobahn's debug text (pretty-printed settings, highlighted names and values,
    built for every connection and every frame sent or received) is built only if logged."""
    try:
        from autobahn.twisted import websocket as twisted_websocket
        from autobahn.websocket import protocol
    except ImportError:
        return False
    if getattr(protocol, "liaison_lazy_debug_text", False):
        return True
    for module in (protocol, twisted_websocket):
        for name in ("pformat", "hltype", "hlval"):
            render = getattr(module, name, None)
            if render is not None:
                setattr(module, name, functools.partial(_ShownLater, render))
    # The one caller that needs the text itself gets it at once.
    protocol.Timings.__str__ = lambda self: pprint.pformat(self._timings)
    protocol.liaison_lazy_debug_text = True
    return True


def _wrap_once(owner: Any, name: str, wrap: Any) -> bool:
    """Replace ``owner.<name>`` by ``wrap(original)``, once however often it is asked."""
    original = getattr(owner, name)
    if getattr(original, "liaison_wrapped", False):
        return True
    replacement = functools.wraps(original)(wrap(original))
    replacement.liaison_wrapped = True
    setattr(owner, name, replacement)
    return True


def drop_frames_for_departed_clients() -> bool:
    """Patch 9: a frame sent after the client closed is dropped, as the client would never
    read it, instead of raising into the consumer."""
    try:
        from daphne.ws_protocol import WebSocketProtocol
    except ImportError:
        return False

    def wrap(original: Any) -> Any:
        def serverSend(self: Any, content: Any, binary: bool = False) -> None:
            if self.state not in (self.STATE_CLOSING, self.STATE_CLOSED):
                original(self, content, binary)

        return serverSend

    return _wrap_once(WebSocketProtocol, "serverSend", wrap)


DAPHNE_DEFAULT_PING_SECONDS = 20


def ping_idle_sockets_less_often() -> bool:
    """Patch 10: daphne's default ping interval becomes ``LIAISON_WS_PING_SECONDS``; an explicit
    ``--ping-interval`` other than daphne's default is kept."""
    try:
        from daphne.server import Server
    except ImportError:
        return False

    def wrap(original: Any) -> Any:
        def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
            original(self, *args, **kwargs)
            if self.ping_interval == DAPHNE_DEFAULT_PING_SECONDS:
                from django.conf import settings

                self.ping_interval = settings.LIAISON_WS_PING_SECONDS

        return __init__

    return _wrap_once(Server, "__init__", wrap)
