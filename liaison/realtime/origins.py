"""Which pages may open a WebSocket: exactly the site's own origins, scheme, host and port.

Channels' ``AllowedHostsOriginValidator`` compares the host only, so a page served from another
port of an allowed host (``http://127.0.0.1:9999`` beside a site on 8000) could open sockets
with the officer's cookies. Here an ``Origin`` passes only if it is, exactly:

- one of ``CSRF_TRUSTED_ORIGINS`` (the public origins, required in production; ``*.`` matches
  subdomains, as in Django's CSRF check), or the origin of ``LIAISON_BASE_URL``; or
- the origin this request was made to: the scheme the server was reached by (``https`` behind
  the proxy that sets ``SECURE_PROXY_SSL_HEADER``) and the ``Host`` header, whose host must be
  in ``ALLOWED_HOSTS``. This is the same-origin rule Django's CSRF check applies to forms.

Anything else, a missing or ``null`` Origin included, is refused at the handshake (HTTP 403).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.http.request import split_domain_port, validate_host

DEFAULT_PORTS = {"http": 80, "https": 443}
Origin = tuple[str, str, int]


def parse_origin(value: str) -> Origin | None:
    """``(scheme, host, port)`` of an origin or URL, ports made explicit; ``None`` if it is
    not an http(s) origin."""
    try:
        parts = urlsplit(value.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if scheme not in DEFAULT_PORTS or not host:
        return None
    return scheme, host, port if port is not None else DEFAULT_PORTS[scheme]


def _header(scope: dict[str, Any], name: bytes) -> str | None:
    values = [value for key, value in scope.get("headers") or () if key.lower() == name]
    if len(values) != 1:
        return None  # absent, or sent twice: nothing to trust
    return values[0].decode("latin-1")


def _scheme(scope: dict[str, Any]) -> str:
    scheme = str(scope.get("scheme") or "").lower()
    if scheme in {"wss", "https"}:
        return "https"
    proxy = getattr(settings, "SECURE_PROXY_SSL_HEADER", None)
    if proxy:
        name, secure_value = proxy
        header = name.lower().removeprefix("http_").replace("_", "-").encode()
        if _header(scope, header) == secure_value:
            return "https"
    return "http"


def _allowed_hosts() -> list[str]:
    hosts = list(settings.ALLOWED_HOSTS)
    if settings.DEBUG and not hosts:
        hosts = [".localhost", "127.0.0.1", "[::1]"]  # as Django's own host check
    return hosts


def requested_origin(scope: dict[str, Any]) -> Origin | None:
    """The origin the client addressed (scheme and ``Host``), if that host is allowed."""
    host_header = _header(scope, b"host")
    if not host_header:
        return None
    domain, _port = split_domain_port(host_header)
    if not domain or not validate_host(domain, _allowed_hosts()):
        return None
    return parse_origin(f"{_scheme(scope)}://{host_header}")


def _matches(origin: Origin, pattern: str) -> bool:
    scheme, host, port = origin
    if "://*." in pattern:
        allowed_scheme, _, rest = pattern.partition("://*.")
        wanted = parse_origin(f"{allowed_scheme}://{rest}")
        return (
            wanted is not None
            and (scheme, port) == (wanted[0], wanted[2])
            and host.endswith("." + wanted[1])
        )
    return parse_origin(pattern) == origin


def origin_allowed(scope: dict[str, Any]) -> bool:
    raw = _header(scope, b"origin")
    origin = parse_origin(raw) if raw else None
    if origin is None:
        return False
    configured = [*settings.CSRF_TRUSTED_ORIGINS, settings.LIAISON_BASE_URL]
    if any(_matches(origin, pattern) for pattern in configured if pattern):
        return True
    return origin == requested_origin(scope)


class SameOriginValidator:
    """ASGI middleware in front of the WebSocket routes: refuses a handshake whose ``Origin``
    is not one of the site's own (see the module docstring)."""

    def __init__(self, application: Any) -> None:
        self.application = application

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        if scope["type"] != "websocket":
            raise ValueError("SameOriginValidator only guards WebSocket connections")
        if origin_allowed(scope):
            return await self.application(scope, receive, send)
        return await WebsocketDenier()(scope, receive, send)
