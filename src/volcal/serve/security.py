"""Admin token check (constant time) and the per-client token-bucket rate limiter."""

from __future__ import annotations

import hmac
import time
from collections import OrderedDict
from collections.abc import Callable

__all__ = ["RateLimiter", "bearer_ok"]


def bearer_ok(header: str | None, token: str | None) -> bool:
    """Whether an ``Authorization`` header carries the bearer ``token``.

    ``False`` when no token is configured (admin off) or the header is absent or
    malformed. The comparison is :func:`hmac.compare_digest` on bytes, so its time does
    not depend on how many leading characters match.
    """
    if token is None or not header:
        return False
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value:
        return False
    return hmac.compare_digest(value.strip().encode("utf-8"), token.encode("utf-8"))


class RateLimiter:
    """Token bucket per client key: ``rate`` requests per second, bursts of ``burst``.

    The table of clients is bounded (``max_clients``, least recently seen evicted), so a
    scan from many addresses cannot grow memory. ``rate == 0`` disables the limit.
    """

    def __init__(
        self,
        rate: float,
        burst: int,
        *,
        max_clients: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate = float(rate)
        self.burst = float(burst)
        self.max_clients = int(max_clients)
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self.limited = 0

    def allow(self, key: str) -> tuple[bool, float]:
        """``(allowed, retry_after_s)`` for one request of client ``key``."""
        if self.rate <= 0:
            return True, 0.0
        now = self._clock()
        tokens, last = self._buckets.pop(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        ok = tokens >= 1.0
        if ok:
            tokens -= 1.0
        else:
            self.limited += 1
        self._buckets[key] = (tokens, now)
        while len(self._buckets) > self.max_clients:
            self._buckets.popitem(last=False)
        return ok, 0.0 if ok else (1.0 - tokens) / self.rate

    def __len__(self) -> int:
        return len(self._buckets)
