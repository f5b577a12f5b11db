"""Abuse limits on ``/v1``: token buckets per business and per client address (spec http-api §11).

Buckets live in process memory by default. With ``HELLOTEXT_REDIS_URL`` set they live in Redis, updated
by one Lua script per request, so every server process shares one budget. Should Redis be unreachable the
request is let through (and logged): a broken limiter must not take the API down with it.
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
import time
from typing import TYPE_CHECKING, Any, Protocol

from starlette.requests import Request

from hellotext.config import Settings
from hellotext.errors import Problem, ProblemError

if TYPE_CHECKING:
    from hellotext.server.auth import Ctx

log = logging.getLogger("hellotext.limits")


class RateLimited(ProblemError):
    """429 with the whole seconds to wait (``Retry-After``)."""

    status = 429

    def __init__(self, retry_after: float) -> None:
        super().__init__(Problem("rate_limited", None, "too many requests; retry later"))
        self.retry_after = max(1, math.ceil(retry_after))


class Buckets(Protocol):
    """A set of token buckets keyed by string."""

    async def take(self, key: str) -> float:
        """Take one token: 0 when granted, else the seconds until one is available."""
        ...


class MemoryBuckets:
    """In-process token buckets: `rate` tokens/s, holding at most `rate * burst_seconds`."""

    def __init__(self, rate: float, burst_seconds: float) -> None:
        self.rate = rate
        self.capacity = max(1.0, rate * burst_seconds)
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take_at(self, key: str, now: float) -> float:
        """`take` at a given monotonic time (tests drive the clock)."""
        with self._lock:
            tokens, last = self._buckets.get(key, (self.capacity, now))
            tokens = min(self.capacity, tokens + max(0.0, now - last) * self.rate)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                return 0.0
            self._buckets[key] = (tokens, now)
            if len(self._buckets) > 100_000:
                # Bound memory under an address-spraying attack: full buckets carry no information.
                self._buckets = {k: v for k, v in self._buckets.items() if v[0] < self.capacity - 1}
            return (1.0 - tokens) / self.rate

    async def take(self, key: str) -> float:
        return self.take_at(key, time.monotonic())


# KEYS[1] bucket; ARGV rate, capacity. Redis' own clock, so processes with skewed clocks agree.
_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local rate = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or capacity
local at = tonumber(state[2]) or now
tokens = math.min(capacity, tokens + math.max(0, now - at) * rate)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = (1 - tokens) / rate end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('EXPIRE', KEYS[1], math.ceil(capacity / rate) + 1)
return tostring(wait)
"""


class RedisBuckets:
    """Token buckets in Redis, shared by every process that uses the same URL and prefix."""

    def __init__(self, client: Any, rate: float, burst_seconds: float, prefix: str) -> None:
        self.rate = rate
        self.capacity = max(1.0, rate * burst_seconds)
        self._client = client
        self._script = client.register_script(_LUA)
        self._prefix = prefix

    async def take(self, key: str) -> float:
        try:
            wait = await self._script(keys=[self._prefix + key], args=[self.rate, self.capacity])
        except Exception as exc:  # the limiter failing open is the documented choice
            log.warning("rate limiter unavailable (%s); request let through", type(exc).__name__)
            return 0.0
        return float(wait)


class Limits:
    """The limits configured in `Settings`; a rate of 0 turns a limit off."""

    def __init__(self, settings: Settings) -> None:
        self._client: Any = None
        burst = settings.rate_limit_burst_seconds
        self.per_business = self._make(settings, settings.rate_limit_per_business, burst, "b")
        self.per_address = self._make(settings, settings.rate_limit_per_address, burst, "a")

    def _make(self, settings: Settings, rate: float, burst: float, kind: str) -> Buckets | None:
        if rate <= 0:
            return None
        if settings.redis_url is None:
            return MemoryBuckets(rate, burst)
        if self._client is None:
            import redis.asyncio

            self._client = redis.asyncio.Redis.from_url(settings.redis_url)
        # Keys name the database too: two deployments (or test runs) sharing one Redis never share budgets.
        scope = hashlib.sha256(f"{settings.database_url}|{settings.database_schema}".encode()).hexdigest()[
            :12
        ]
        return RedisBuckets(self._client, rate, burst, f"hellotext:rl:{scope}:{kind}:")

    async def check(self, request: Request, ctx: Ctx) -> None:
        """Raise `RateLimited` when a bucket of this request is empty."""
        if self.per_address is not None:
            address = request.client.host if request.client else "unknown"
            wait = await self.per_address.take(address)
            if wait:
                raise RateLimited(wait)
        if self.per_business is not None:
            wait = await self.per_business.take(str(ctx.business.pk))
            if wait:
                raise RateLimited(wait)

    async def close(self) -> None:
        """Close the Redis connection, if any."""
        if self._client is not None:
            await self._client.aclose()
