"""Abuse limits on ``/v1``: token buckets per business and per client address (spec http-api §11)."""

from __future__ import annotations

import math
import threading
import time
from typing import TYPE_CHECKING

from starlette.requests import Request

from hellotext.config import Settings
from hellotext.errors import Problem, ProblemError

if TYPE_CHECKING:
    from hellotext.server.auth import Ctx


class RateLimited(ProblemError):
    """429 with the seconds to wait."""

    status = 429

    def __init__(self, retry_after: float) -> None:
        super().__init__(Problem("rate_limited", None, "too many requests; retry later"))
        self.retry_after = max(1, math.ceil(retry_after))


class TokenBuckets:
    """In-process token buckets: `rate` tokens/s, holding at most `rate * burst_seconds`."""

    def __init__(self, rate: float, burst_seconds: float) -> None:
        self.rate = rate
        self.capacity = max(1.0, rate * burst_seconds)
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key: str, now: float | None = None) -> float:
        """Take one token; returns 0 when granted, else the seconds until one is available."""
        moment = time.monotonic() if now is None else now
        with self._lock:
            tokens, last = self._buckets.get(key, (self.capacity, moment))
            tokens = min(self.capacity, tokens + (moment - last) * self.rate)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, moment)
                return 0.0
            self._buckets[key] = (tokens, moment)
            return (1.0 - tokens) / self.rate


class Limits:
    """The limits configured in `Settings`; a rate of 0 turns a limit off."""

    def __init__(self, settings: Settings) -> None:
        self.per_business = (
            TokenBuckets(settings.rate_limit_per_business, settings.rate_limit_burst_seconds)
            if settings.rate_limit_per_business > 0
            else None
        )
        self.per_address = (
            TokenBuckets(settings.rate_limit_per_address, settings.rate_limit_burst_seconds)
            if settings.rate_limit_per_address > 0
            else None
        )

    async def check(self, request: Request, ctx: Ctx) -> None:
        """Raise `RateLimited` when a bucket is empty."""
        if self.per_address is not None:
            address = request.client.host if request.client else "unknown"
            wait = self.per_address.take(f"a:{address}")
            if wait:
                raise RateLimited(wait)
        if self.per_business is not None:
            wait = self.per_business.take(f"b:{ctx.business.pk}")
            if wait:
                raise RateLimited(wait)
