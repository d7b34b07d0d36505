"""The benchmark's baseline: a bare Channels consumer on the same Redis channel layer, no auth, no database.

It speaks the part of protocol v1 the load generator uses, so the same client drives both servers:
`subscribe` joins the conversation's group and answers `subscribed`; `message.send` is acknowledged and relayed
through the layer to every socket in the group, without a seq (nothing is stored). Served by its own Daphne:
`daphne tests.load.echo_asgi:application` with DJANGO_SETTINGS_MODULE=refundchat.settings (for CHANNEL_LAYERS).
"""

from __future__ import annotations

import json
import os
from typing import Any

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "refundchat.settings")
django.setup(set_prefix=False)

from channels.generic.websocket import AsyncWebsocketConsumer  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402


class EchoConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        await self.accept()
        self.groups_joined: set[str] = set()
        await self.send(text_data=json.dumps({"type": "hello", "protocol": 1, "user_id": 0}))

    async def disconnect(self, code: int) -> None:
        for group in self.groups_joined:
            await self.channel_layer.group_discard(group, self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        frame = json.loads(text_data or "{}")
        kind = frame.get("type")
        if kind == "subscribe":
            group = f"echo.{int(frame['conversation'])}"
            if group not in self.groups_joined:
                self.groups_joined.add(group)
                await self.channel_layer.group_add(group, self.channel_name)
            await self.send(text_data=json.dumps({"type": "subscribed", "conversation": frame["conversation"]}))
        elif kind == "message.send":
            message = {
                "conversation": frame["conversation"],
                "seq": None,
                "kind": "text",
                "client_id": frame["client_id"],
                "body": frame["body"],
            }
            await self.send(text_data=json.dumps({"type": "message.ack", "client_id": frame["client_id"], "seq": None}))
            await self.channel_layer.group_send(
                f"echo.{int(frame['conversation'])}",
                {"type": "relay.frame", "frame": {"type": "message", "message": message}},
            )
        elif kind == "ping":
            await self.send(text_data=json.dumps({"type": "pong"}))

    async def relay_frame(self, event: dict[str, Any]) -> None:
        await self.send(text_data=json.dumps(event["frame"], ensure_ascii=False))


websocket_urlpatterns = [path("ws/", EchoConsumer.as_asgi())]  # type: ignore[arg-type]
application = ProtocolTypeRouter({"websocket": URLRouter(websocket_urlpatterns)})  # type: ignore[arg-type]
