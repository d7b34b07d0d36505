"""ASGI entry point: HTTP through Django, WebSocket `/ws/` through Channels."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "refundchat.settings")
# Django must be set up before the consumers (and their models) are imported.
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from refundchat.logging import websocket_context  # noqa: E402
from refundchat.metrics import websocket_metrics  # noqa: E402
from refundchat.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        # Inside the auth middleware: the connection's log context knows its user; the gauge counts open sockets.
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(websocket_context(websocket_metrics(URLRouter(websocket_urlpatterns))))  # type: ignore[arg-type]
        ),
    }
)
