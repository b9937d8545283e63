"""ASGI entry point: HTTP through Django, WebSockets through Channels under /ws/."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from config.daphne_tuning import (  # noqa: E402
    disable_twisted_form_parsing,
    stream_request_bodies_from_spool,
)
from liaison.routing import websocket_urlpatterns  # noqa: E402
from liaison.transport import close_oversized_frames_with_1009  # noqa: E402

close_oversized_frames_with_1009()

# Under daphne, keep Twisted from parsing upload bodies in memory (see config/daphne_tuning.py).
disable_twisted_form_parsing()
stream_request_bodies_from_spool()

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(URLRouter(websocket_urlpatterns))
        ),
    }
)
