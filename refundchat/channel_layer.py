"""channels-redis' pub/sub layer, with the two costs that bound a busy chat server taken out.

- Publishing: channels-redis sends one `PUBLISH` at a time per process, each waiting for Redis' answer under a
  lock, so a process could publish only as fast as one round trip at a time allows, and every frame of every
  socket queued behind it. Here what is published while a round trip is under way goes in the next one, as one
  pipeline: the same frames, in the same order, far fewer round trips.
- Receiving: a group message was decoded once per socket in the group. Here it is decoded once per process and
  the same dict is handed to every consumer (consumers must not change the events they are given; ours don't).

Delivery stays at most once, as with channels-redis: clients recover anything lost from the database.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from channels_redis.pubsub import RedisPubSubChannelLayer, RedisPubSubLoopLayer, RedisSingleShardConnection
from channels_redis.utils import _wrap_close, decode_hosts

logger = logging.getLogger(__name__)


class PipelinedPubSubChannelLayer(RedisPubSubChannelLayer):
    # Sends share one connection per shard: callers need not cap how many they have in flight (messaging.realtime).
    pipelines_sends = True

    def _get_layer(self) -> RedisPubSubLoopLayer:
        loop = asyncio.get_running_loop()
        layer = self._layers.get(loop)
        if layer is None:
            layer = self._layers[loop] = _LoopLayer(*self._args, **self._kwargs, channel_layer=self)
            _wrap_close(self, loop)
        return layer

    def deserialize(self, message: bytes | dict[str, Any]) -> dict[str, Any]:
        # Group messages arrive decoded already (`_Shard._receive_message`).
        if isinstance(message, dict):
            return message
        return super().deserialize(message)


class _LoopLayer(RedisPubSubLoopLayer):
    def __init__(self, hosts: Any = None, **kwargs: Any) -> None:
        super().__init__(hosts, **kwargs)
        self._shards = [_Shard(host, self) for host in decode_hosts(hosts)]

    async def group_send_many(self, messages: list[tuple[str, dict[str, Any]]]) -> None:
        """`group_send` for several messages, handed over in this order: one wait, not one task per message."""
        by_shard: dict[_Shard, list[tuple[str, bytes]]] = {}
        for group, message in messages:
            channel = self._get_group_channel_name(group)
            by_shard.setdefault(self._get_shard(channel), []).append((channel, self.channel_layer.serialize(message)))
        await asyncio.gather(*(shard.publish_many(items) for shard, items in by_shard.items()))


class _Shard(RedisSingleShardConnection):
    def __init__(self, host: Any, channel_layer: Any) -> None:
        super().__init__(host, channel_layer)
        self._outbox: list[tuple[str, bytes, asyncio.Future[None]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def publish(self, channel: str, message: bytes) -> None:
        """Returns once Redis took the message, as channels-redis' does."""
        await self.publish_many([(channel, message)])

    async def publish_many(self, messages: list[tuple[str, bytes]]) -> None:
        sent: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._outbox += [(channel, message, sent) for channel, message in messages]
        if self._flusher is None:
            self._flusher = asyncio.ensure_future(self._flush())
        await sent

    async def _flush(self) -> None:
        try:
            while self._outbox:
                batch, self._outbox = self._outbox, []
                try:
                    # Not under the shard's lock, which guards the subscription connection: publishes go through
                    # the pool, and a reconnect storm's thousands of subscribes must not queue behind them (a
                    # socket's accept waits for its subscribe, and Daphne refuses a handshake not accepted in 5 s).
                    self._ensure_redis()
                    pipeline = self._redis.pipeline(transaction=False)
                    for channel, message, _sent in batch:
                        pipeline.publish(channel, message)
                    await pipeline.execute()
                except Exception as error:
                    for _channel, _message, sent in batch:
                        if not sent.done():  # a future stands for all the messages of one publish_many
                            sent.set_exception(error)
                else:
                    for _channel, _message, sent in batch:
                        if not sent.done():
                            sent.set_result(None)
        finally:
            self._flusher = None

    async def flush(self) -> None:
        if self._flusher is not None:
            self._flusher.cancel()
            self._flusher = None
        for _channel, _message, sent in self._outbox:
            sent.cancel()
        self._outbox = []
        await super().flush()

    def _receive_message(self, message: dict[str, Any] | None) -> None:
        if message is None:
            return
        name = message["channel"]
        if isinstance(name, bytes):
            name = name.decode()
        layer = self.channel_layer
        if name in layer.channels:
            layer.channels[name].put_nowait(message["data"])
        elif name in layer.groups:
            decoded = layer.channel_layer.deserialize(message["data"])
            for channel_name in layer.groups[name]:
                queue = layer.channels.get(channel_name)
                if queue is not None:
                    queue.put_nowait(decoded)
