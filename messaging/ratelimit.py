"""Token buckets shared by every server process: in Redis when REDIS_URL is set.

Without Redis (the embedded `make run`, one Daphne process) the buckets live in
the process. If Redis cannot be reached the limit is not applied: chat must go
on during a Redis restart, and the messages are stored in PostgreSQL anyway.
"""

from __future__ import annotations

import logging
import threading
import time
from functools import cache

import redis
from django.conf import settings
from redis.commands.core import Script
from redis.exceptions import NoScriptError

logger = logging.getLogger(__name__)

# KEYS[1] = bucket; ARGV = capacity, refill per second. Returns the seconds to wait ("0" when allowed).
# Redis' own clock, so that every server process agrees on the time.
_TAKE_SCRIPT = """
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or capacity
local at = tonumber(state[2]) or now
tokens = math.min(capacity, tokens + math.max(0, now - at) * rate)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = (1 - tokens) / rate end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(capacity / rate * 1000) + 1000)
return tostring(wait)
"""

# KEYS[1] = bucket; ARGV = capacity. Puts one token back (never above capacity); a missing bucket is full anyway.
_GIVE_BACK_SCRIPT = """
local tokens = tonumber(redis.call('HGET', KEYS[1], 'tokens'))
if tokens then redis.call('HSET', KEYS[1], 'tokens', tostring(math.min(tonumber(ARGV[1]), tokens + 1))) end
return 0
"""


@cache
def _redis_scripts() -> tuple[Script, Script] | None:
    if not settings.REDIS_URL:
        return None
    client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=0.5, socket_connect_timeout=0.5)
    return client.register_script(_TAKE_SCRIPT), client.register_script(_GIVE_BACK_SCRIPT)


class _LocalBuckets:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._state: dict[str, tuple[float, float]] = {}

    def take(self, key: str, capacity: int, rate: float) -> float:
        with self._lock:
            now = time.monotonic()
            tokens, at = self._state.get(key, (float(capacity), now))
            tokens = min(capacity, tokens + (now - at) * rate)
            wait = 0.0
            if tokens >= 1:
                tokens -= 1
            else:
                wait = (1 - tokens) / rate
            self._state[key] = (tokens, now)
            return wait

    def give_back(self, key: str, capacity: int) -> None:
        with self._lock:
            if key in self._state:
                tokens, at = self._state[key]
                self._state[key] = (min(capacity, tokens + 1), at)


_local_buckets = _LocalBuckets()


def take_token(*, bucket: str, capacity: int, rate: float) -> float:
    """Take one token from `bucket`; return 0 when allowed, else the seconds until one is free."""
    key = _key(bucket)
    scripts = _redis_scripts()
    if scripts is None:
        return _local_buckets.take(key, capacity, rate)
    try:
        return float(scripts[0](keys=[key], args=[capacity, rate]))
    except redis.RedisError:
        logger.warning("rate limit not applied: Redis unavailable", exc_info=True)
        return 0.0


def take_tokens(*, buckets: list[str], capacity: int, rate: float) -> list[float]:
    """`take_token` for several buckets (a bucket may come more than once) in one Redis round trip, in order."""
    keys = [_key(bucket) for bucket in buckets]
    scripts = _redis_scripts()
    if scripts is None:
        return [_local_buckets.take(key, capacity, rate) for key in keys]
    if not keys:
        return []
    take = scripts[0]
    try:
        try:
            return _take_in_pipeline(take, keys, capacity, rate)
        except NoScriptError:  # Redis restarted empty: load the script once, then again
            take.registered_client.script_load(take.script)
            return _take_in_pipeline(take, keys, capacity, rate)
    except redis.RedisError:
        logger.warning("rate limit not applied: Redis unavailable", exc_info=True)
        return [0.0] * len(keys)


def _take_in_pipeline(take: Script, keys: list[str], capacity: int, rate: float) -> list[float]:
    # EVALSHA straight away: redis-py's own script pipelining asks SCRIPT EXISTS first, a second round trip.
    pipe = take.registered_client.pipeline(transaction=False)
    for key in keys:
        pipe.evalsha(take.sha, 1, key, capacity, rate)
    return [float(wait) for wait in pipe.execute()]


def give_back_token(*, bucket: str, capacity: int) -> None:
    """Return a token taken for something that turned out to cost nothing (a resend)."""
    key = _key(bucket)
    scripts = _redis_scripts()
    if scripts is None:
        _local_buckets.give_back(key, capacity)
        return
    try:
        scripts[1](keys=[key], args=[capacity])
    except redis.RedisError:
        logger.warning("rate limit token not given back: Redis unavailable", exc_info=True)


def _key(bucket: str) -> str:
    return f"{settings.REFUNDCHAT_RATE_LIMIT_PREFIX}:{bucket}"


def send_wait(*, user_id: int) -> float:
    """Seconds the person must wait before sending another message (0: send now)."""
    return take_token(
        bucket=f"send:{user_id}", capacity=settings.REFUNDCHAT_SEND_BURST, rate=settings.REFUNDCHAT_SEND_RATE
    )


def send_waits(*, user_ids: list[int]) -> list[float]:
    """`send_wait` for a batch of messages, one user id per message."""
    return take_tokens(
        buckets=[f"send:{user_id}" for user_id in user_ids],
        capacity=settings.REFUNDCHAT_SEND_BURST,
        rate=settings.REFUNDCHAT_SEND_RATE,
    )


def give_back_send(*, user_id: int) -> None:
    give_back_token(bucket=f"send:{user_id}", capacity=settings.REFUNDCHAT_SEND_BURST)
