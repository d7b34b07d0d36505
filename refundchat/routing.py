from django.urls import path

from messaging.consumers import RealtimeConsumer

websocket_urlpatterns = [
    path("ws/", RealtimeConsumer.as_asgi()),  # type: ignore[arg-type]
]
