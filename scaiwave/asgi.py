import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "scaiwave.settings")
django_http = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from rooms.token_asgi import TokenFastPath  # noqa: E402
from scaiwave.api.body_limit import BodySizeLimit  # noqa: E402
from scaiwave.api.static_files import StaticFiles  # noqa: E402
from scaiwave.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        # Admin and Swagger assets are served by the app itself so the embedded run needs no proxy.
        # Oversized bodies are refused before Django reads them (scaiwave.api.body_limit).
        # POST /v1/token(/refresh) is answered without Django's request cycle and DRF (rooms.token_asgi).
        "http": BodySizeLimit(TokenFastPath(StaticFiles(django_http))),
        "websocket": URLRouter(websocket_urlpatterns),
    }
)
