"""Patches to the daphne (Twisted/Autobahn) server this ASGI application runs under.

daphne exposes no option for any of these, so they are applied once, when the application is
loaded (``config/asgi.py`` calls :func:`tune_daphne`), and take effect for every server created
afterwards (the daphne command line and ``daphne.testing.DaphneProcess`` both load the
application first). Each patch is idempotent and a no-op where daphne is not installed.

1. WebSocket frames over the limit close with 1009. daphne's Autobahn factory keeps Autobahn's
   default ``failByDrop``: a frame over ``--websocket-max-message-size`` drops the TCP
   connection and the client sees 1006 instead of the 1009 the protocol promises
   (docs/api/websocket.md). Turning it off makes Autobahn close with a proper close frame.
2. No in-memory form parsing. Twisted's ``Request`` parses every ``multipart/form-data`` POST
   body into ``request.args`` with the e-mail parser before daphne hands the request on: it
   reads the whole body into memory and then uses about ten times its size more (a 100 MiB
   attachment cost 1.3 GiB of resident memory). Daphne never reads ``request.args``; Django
   parses the body itself, streaming. Twisted's ``parsePOSTFormSubmission=False`` turns it off.
3. A clean stop. On SIGTERM daphne cancels every application at once: sockets drop (1006)
   and a database thread could be left waiting on a loop that had stopped. Before that, the
   server now stops listening, closes every room socket with 1012 (service restart: clients
   reconnect at once, to another worker when there is one), and lets in-flight database calls
   commit, for at most ``DRAIN_SECONDS``.
4. Bodies stream from the spool. Daphne puts the whole received body on the application's queue
   at once; ``SpooledBodyQueue`` leaves it in Twisted's spool file and reads each chunk when
   asked, so an upload costs the server a few MiB whatever its size (``bench attachments``).
5. Bodies are limited from the headers and spooled sealed. Daphne starts the application only
   once the whole body has arrived, spooled by Twisted (to a plaintext temporary file past
   100 kB), so a limit applied by the application comes after the server has read and stored
   the body (a declared 200 MiB went unanswered for 20 s). The route's limit
   (``liaison.request_bodies``) is now applied when the headers are in: a declared length over it
   is answered 413 at once and nothing is spooled; a chunked body is counted and cut off at the
   limit. What is spooled goes to a ``SealedSpool``: memory, then ciphertext under a key that
   lives only in memory, so no plaintext body reaches the disk.
6. Large buffers go back to the system. glibc raises its mmap threshold each time a large
   buffer is freed (up to 32 MiB); after that, buffers such as a decoded image come from
   per-thread arenas that keep the memory. Images are decoded one at a time, but each request on
   its own thread, so twenty previews left the server about 200 MB larger instead of the one
   decode's 70 MB (``bench images``). A fixed threshold of 1 MiB keeps the bound real.
7. Housekeeping over every connection runs less often. Daphne walks all its connections every
   second (finished applications) and every two seconds (timeouts and pings); with 2,000 idle
   sockets those walks were most of the idle CPU. They now run every ``SWEEP_SECONDS``: a
   finished application is reaped, a ping sent or a timeout enforced a few seconds later.
Patches 8 to 10 live in ``server_connections.py``.

8. No debug text is built for nobody. Autobahn pretty-prints every new connection's settings
   and highlights names and values for every frame sent and received, for debug log lines that
   are off, before the logger drops them: 4 % of the event loop in a storm of connects. The
   text is now built only if the line is written.
9. A frame for a client that has already gone is dropped. A socket's answer can race the
   client's close; Autobahn then raised ``Disconnected`` into the consumer, which logged a
   traceback for an ordinary departure.
10. Idle sockets are pinged every ``LIAISON_WS_PING_SECONDS`` (45 s) instead of daphne's 20 s,
    unless ``--ping-interval`` says otherwise. A ping and its pong cost the server about 0.4 ms;
    with 2,000 idle sockets the 20-second pings were most of the idle CPU (measured between
    bursts of other work: 1.5 % of a core at 20 s, 1.3 % at 40 s, 0.9 % at 60 s). nginx keeps ``/ws/`` open for an hour between
    frames; 45 s plus the sweep's 6 s stays under the 60 s idle timeout of common load
    balancers, and a client that vanished is closed within about 80 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import functools
import inspect
import io
import logging
from typing import Any

from liaison.crypto.spool import MEMORY_BYTES, SealedSpool
from liaison.realtime.server_connections import (
    drop_frames_for_departed_clients,
    format_debug_text_only_when_shown,
    ping_idle_sockets_less_often,
)
from liaison.request_bodies import body_rule_for_target, too_large_body, too_large_headers

logger = logging.getLogger(__name__)


def disable_twisted_form_parsing() -> bool:
    """Make daphne's requests skip Twisted's form parsing. Idempotent; ``False`` when daphne
    is not installed or Twisted predates the switch (nothing to do then)."""
    try:
        from daphne.http_protocol import WebRequest
        from twisted.web.http import Request
    except ImportError:
        return False
    if getattr(WebRequest, "_liaison_form_parsing_off", False):
        return True
    if "parsePOSTFormSubmission" not in inspect.signature(Request.__init__).parameters:
        return False
    original = WebRequest.__init__

    @functools.wraps(original)
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("parsePOSTFormSubmission", False)
        original(self, *args, **kwargs)

    WebRequest.__init__ = __init__
    WebRequest._liaison_form_parsing_off = True
    return True


class SpooledBodyQueue(asyncio.Queue):
    """An application input queue that leaves request-body chunks in the request's spooled
    content file and reads each one only when the application asks for it.

    Daphne reads a received body and puts every chunk on the application's queue at once, so
    without this an upload sat in memory whole (a 100 MiB file grew the server by 100 MiB).
    Twisted has already spooled the body to its content file; chunks are remembered by offset.
    """

    def __init__(self, content: Any) -> None:
        super().__init__()
        self._content = content
        self._offset = 0

    def put_nowait(self, item: dict[str, Any]) -> None:
        if item.get("type") == "http.request" and item.get("body"):
            size = len(item["body"])
            item = {**item, "body": b"", _SPAN: (self._offset, size)}
            self._offset += size
        super().put_nowait(item)

    async def get(self) -> dict[str, Any]:
        item = await super().get()
        span = item.pop(_SPAN, None)
        if span is None:
            return item
        offset, size = span
        try:
            self._content.seek(offset)
            item["body"] = self._content.read(size)
        except (ValueError, OSError):  # the connection went away and Twisted closed the file
            return {"type": "http.disconnect"}
        return item


_SPAN = "liaison.body_span"


def stream_request_bodies_from_spool() -> bool:
    """Make daphne feed HTTP request bodies to the application chunk by chunk from Twisted's
    spool instead of all at once from memory. Idempotent; ``False`` without daphne."""
    try:
        from daphne.http_protocol import WebRequest
        from daphne.server import Server
    except ImportError:
        return False
    if getattr(Server, "_liaison_spooled_bodies", False):
        return True
    original = Server.create_application

    @functools.wraps(original)
    def create_application(self: Any, protocol: Any, scope: dict[str, Any]) -> Any:
        if not isinstance(protocol, WebRequest) or getattr(protocol, "content", None) is None:
            return original(self, protocol, scope)
        # The same steps as daphne's own create_application, with the spooling queue.
        assert "application_instance" not in self.connections[protocol]
        input_queue = SpooledBodyQueue(protocol.content)
        scope.setdefault("asgi", {"version": "3.0"})
        application_instance = self.application(
            scope=scope,
            receive=input_queue.get,
            send=functools.partial(self.handle_reply, protocol),
        )
        if protocol not in self.connections:
            return None
        self.connections[protocol]["application_instance"] = asyncio.ensure_future(
            application_instance, loop=asyncio.get_event_loop()
        )
        return input_queue

    Server.create_application = create_application
    Server._liaison_spooled_bodies = True
    return True


# After a 413, how long the client may go on sending (read and dropped) before the connection is
# cut: closing at once, with its data unread, would reset the connection and the client could
# lose the answer.
LINGER_SECONDS = 2.0


def _drop(data: bytes) -> None:
    return None


def _abort(transport: Any) -> None:
    with contextlib.suppress(Exception):
        if not getattr(transport, "disconnected", False):
            transport.abortConnection()


def _refuse_body(request: Any) -> None:
    """Answer 413 straight onto the connection (the request was never handed to the application)
    and stop reading the body: what the client still sends is dropped until it closes, or for
    ``LINGER_SECONDS`` at most."""
    from twisted.internet import reactor

    request._liaison_refused = True
    channel = request.channel
    transport = channel.transport
    # Twisted answers "Expect: 100-continue" right after the length is known: not after a 413.
    request.requestHeaders.removeHeader(b"Expect")
    language = (request.requestHeaders.getRawHeaders(b"Accept-Language") or [b""])[0]
    body = too_large_body(request._liaison_max_bytes, accept_language=language.decode("latin-1"))
    head = [b"HTTP/1.1 413 Content Too Large"]
    head += [name + b": " + value for name, value in too_large_headers(body)]
    transport.write(b"\r\n".join(head) + b"\r\n\r\n" + body)
    channel.persistent = False
    channel.dataReceived = channel.rawDataReceived = _drop
    half_close = getattr(transport, "loseWriteConnection", None)
    (half_close or transport.loseConnection)()
    reactor.callLater(LINGER_SECONDS, _abort, transport)
    client = getattr(request, "client", None)
    with contextlib.suppress(Exception):
        request.server.log_action(
            "http",
            "complete",
            {
                "path": getattr(channel, "_path", b"").decode("ascii", "replace"),
                "status": 413,
                "method": getattr(channel, "_command", b"").decode("ascii", "replace"),
                "client": f"{client.host}:{client.port}" if hasattr(client, "host") else None,
                "time_taken": 0.0,
                "size": len(body),
            },
        )


def limit_request_bodies() -> bool:
    """Make daphne refuse over-limit bodies from the headers and spool the rest sealed (item 5).
    Idempotent; ``False`` without daphne."""
    try:
        from daphne.http_protocol import WebRequest
    except ImportError:
        return False
    if getattr(WebRequest, "_liaison_body_limits", False):
        return True
    original_received = WebRequest.requestReceived

    def gotLength(self: Any, length: int | None) -> None:
        # Called once the headers are in, before any of the body; the request line is still
        # the channel's (the request learns it only once the body is complete).
        rule = body_rule_for_target(
            getattr(self.channel, "_path", b"/"),
            root_path=getattr(self.server, "root_path", "") or "",
        )
        self._liaison_max_bytes = rule.max_bytes
        self._liaison_received = 0
        if length is not None and length > rule.max_bytes:
            self.content = None
            _refuse_body(self)
        elif length is not None and length < MEMORY_BYTES:
            self.content = io.BytesIO()
        else:
            self.content = SealedSpool()

    def handleContentChunk(self: Any, data: bytes) -> None:
        if getattr(self, "_liaison_refused", False):
            return
        self._liaison_received += len(data)
        if self._liaison_received > self._liaison_max_bytes:
            self.content.close()
            self.content = None
            _refuse_body(self)
            return
        self.content.write(data)

    @functools.wraps(original_received)
    def requestReceived(self: Any, command: bytes, path: bytes, version: bytes) -> None:
        if getattr(self, "_liaison_refused", False):
            return
        original_received(self, command, path, version)

    WebRequest.gotLength = gotLength
    WebRequest.handleContentChunk = handleContentChunk
    WebRequest.requestReceived = requestReceived
    WebRequest._liaison_body_limits = True
    return True


M_MMAP_THRESHOLD = -3  # mallopt's parameter number (glibc malloc.h)
MMAP_THRESHOLD_BYTES = 1024 * 1024


def return_large_buffers_to_the_system() -> bool:
    """Make glibc serve every allocation of ``MMAP_THRESHOLD_BYTES`` or more with its own
    mapping, given back when freed (item 6). ``False`` where the C library is not glibc."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES))
    except (OSError, AttributeError):
        return False


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


DRAIN_SECONDS = 3.0


async def _drain(server: Any) -> None:
    from channels.layers import get_channel_layer

    from liaison.realtime import db, presence, sockets

    for port in getattr(server, "liaison_ports", []):
        with contextlib.suppress(Exception):
            port.stopListening()
    stopping = sockets.stop_all_for_restart()
    # Autobahn only lets an application send 1000 or 3000-4999, so the 1012 of a service
    # restart is sent by the server itself, on every open WebSocket.
    for protocol in list(getattr(server, "connections", {})):
        if (
            hasattr(protocol, "sendCloseFrame")
            and getattr(protocol, "state", None) == protocol.STATE_OPEN
        ):
            with contextlib.suppress(Exception):
                protocol.sendCloseFrame(code=1012, reasonUtf8=b"service restart", isReply=False)
    logger.info("shutting down: %d room sockets told to reconnect (1012)", stopping)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(db.wait_idle(), DRAIN_SECONDS)
    with contextlib.suppress(Exception):
        await asyncio.wait_for(db.call(presence.forget_worker), timeout=1.0)
    db.shutdown(wait=False)
    # Drop the channel layer's subscriptions with its connection: cancelled consumers would
    # otherwise unsubscribe one channel at a time (seconds with thousands of sockets).
    with contextlib.suppress(Exception):
        await asyncio.wait_for(get_channel_layer().flush(), timeout=1.0)


def drain_before_shutdown() -> bool:
    """Make daphne's shutdown close sockets with 1012 and finish commits first (item 3)."""
    try:
        from daphne.server import Server
        from twisted.internet import defer
    except ImportError:
        return False
    if getattr(Server, "liaison_drains", False):
        return True
    original_kill = Server.kill_all_applications
    original_listen_success = Server.listen_success

    def listen_success(self: Any, port: Any) -> None:
        self.__dict__.setdefault("liaison_ports", []).append(port)
        original_listen_success(self, port)

    def kill_all_applications(self: Any) -> Any:
        drained = defer.Deferred.fromFuture(asyncio.ensure_future(_drain(self)))
        drained.addErrback(lambda failure: None)
        drained.addCallback(lambda _: original_kill(self))
        return drained

    Server.listen_success = listen_success
    Server.kill_all_applications = kill_all_applications
    Server.liaison_drains = True
    return True


SWEEP_SECONDS = 6


def sweep_connections_less_often() -> bool:
    """Patch 7: daphne's two walks over every connection run every ``SWEEP_SECONDS``; each
    still reschedules itself as before, on the ticks in between it does nothing."""
    try:
        from daphne.server import Server
        from twisted.internet import reactor
    except ImportError:
        return False
    if getattr(Server, "liaison_sweeps", False):
        return True

    def every(name: str, tick: int) -> None:
        walk = getattr(Server, name)
        skips = SWEEP_SECONDS // tick

        def sometimes(self: Any) -> None:
            count = self.__dict__.get(f"liaison_{name}", 0) + 1
            self.__dict__[f"liaison_{name}"] = count
            if count % skips:
                reactor.callLater(tick, getattr(self, name))
                return
            walk(self)

        setattr(Server, name, sometimes)

    every("application_checker", 1)
    every("timeout_checker", 2)
    Server.liaison_sweeps = True
    return True


def tune_daphne() -> None:
    """Apply every patch above and in ``server_connections`` (see the module docstring for why
    each exists)."""
    close_oversized_frames_with_1009()
    drain_before_shutdown()
    disable_twisted_form_parsing()
    stream_request_bodies_from_spool()
    limit_request_bodies()
    return_large_buffers_to_the_system()
    sweep_connections_less_often()
    format_debug_text_only_when_shown()
    drop_frames_for_departed_clients()
    ping_idle_sockets_less_often()
