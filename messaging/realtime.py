"""The one way events reach WebSocket clients.

Services call `publish()` inside their transaction; the frame is handed to the
channel layer only after the transaction commits, so a client never sees data
that was rolled back. The layer delivers at most once: clients recover anything
it drops from the database (see docs/protocol.md).
"""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

logger = logging.getLogger(__name__)

# Every connection of a staff member who may use the console joins this group.
QUEUE_GROUP = "queue"
# The consumer method (`relay_frame`) that forwards a published frame.
RELAY_EVENT_TYPE = "relay.frame"

Frame = dict[str, Any]


def conversation_group(conversation_id: int) -> str:
    return f"conversation.{conversation_id}"


def user_group(user_id: int) -> str:
    return f"user.{user_id}"


def publish(*, group: str, frame: Frame) -> None:
    """Send `frame` to every socket in `group` once the current transaction commits."""
    transaction.on_commit(partial(_send_to_group, group, frame))


async def publish_ephemeral(*, group: str, frame: Frame) -> None:
    """Send a frame that nothing stores (typing) from async code, at once; losing it is harmless."""
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        await layer.group_send(group, {"type": RELAY_EVENT_TYPE, "frame": frame})
    except Exception:
        logger.exception("channel layer send to %s failed", group)


def _send_to_group(group: str, frame: Frame) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(group, {"type": RELAY_EVENT_TYPE, "frame": frame})
    except Exception:
        # The database already holds the data; clients catch up on reconnect.
        logger.exception("channel layer send to %s failed", group)
