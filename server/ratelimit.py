"""Request budgets shared by every process through Redis, or kept in this process.

With `REDIS_URL` set, each budget (a client address's requests a minute, an API key's) is one fixed
one-minute window in Redis, counted by the `limits` library, so N processes behind a load balancer
allow what one would. Without Redis, or while Redis does not answer, each process counts on its own
(`FixedWindow`): the limit then holds per process, which is the single-machine default and the
degraded mode. A failure is logged once as a warning and counted (`envcase_rate_limit_fallbacks`),
and Redis is asked again after `retry_seconds`.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict

from limits import RateLimitItemPerMinute
from limits.aio.storage import RedisStorage
from limits.aio.strategies import FixedWindowRateLimiter
from limits.errors import StorageError
from prometheus_client import Counter

from kernel.metrics import REGISTRY

log = logging.getLogger("server.ratelimit")

fallbacks = Counter(
    "envcase_rate_limit_fallbacks",
    "Times Redis failed under a request budget and this process counted on its own instead",
    registry=REGISTRY,
)


class FixedWindow:
    """Fixed one-minute request budgets, per key (a client address, an API key), in this process."""

    def __init__(self, max_keys: int = 100_000) -> None:
        self.max_keys = max_keys
        self.windows: OrderedDict[str, tuple[int, int]] = OrderedDict()

    def allow(self, key: str, per_minute: int) -> tuple[bool, int]:
        """Whether one more request of `key` fits its budget, and the seconds until the next window."""
        minute = int(time.time() // 60)
        window, count = self.windows.pop(key, (minute, 0))
        if window != minute:
            window, count = minute, 0
        count += 1
        self.windows[key] = (window, count)
        while len(self.windows) > self.max_keys:
            self.windows.popitem(last=False)
        return count <= per_minute, 60 - int(time.time()) % 60


class Budgets:
    """`await allow(key, per_minute)`: in Redis when configured and answering, else in this process."""

    def __init__(
        self,
        redis_url: str | None = None,
        *,
        prefix: str = "envcase:budget",
        timeout_seconds: float = 0.5,
        retry_seconds: float = 5.0,
    ) -> None:
        self.local = FixedWindow()
        self.retry_seconds = retry_seconds
        self._storage: RedisStorage | None = None
        self._shared: FixedWindowRateLimiter | None = None
        if redis_url:
            self._storage = RedisStorage(
                "async+" + redis_url,
                wrap_exceptions=True,
                implementation="redispy",
                key_prefix=prefix,
                socket_timeout=timeout_seconds,
                socket_connect_timeout=timeout_seconds,
            )
            self._shared = FixedWindowRateLimiter(self._storage)
        self._down_until = 0.0  # monotonic time before which Redis is not asked again
        self.degraded = False

    @property
    def shared(self) -> bool:
        """Whether budgets are counted in Redis (configured and, as far as known, answering)."""
        return self._shared is not None and not self.degraded

    async def allow(self, key: str, per_minute: int) -> tuple[bool, int]:
        """Whether one more request of `key` fits its budget, and the seconds until it may try again."""
        if self._shared is not None and time.monotonic() >= self._down_until:
            item = RateLimitItemPerMinute(per_minute)
            try:
                if await self._shared.hit(item, key):
                    self._recovered()
                    return True, 0
                stats = await self._shared.get_window_stats(item, key)
            except StorageError as exc:
                self._failed(exc)
            else:
                self._recovered()
                return False, max(1, int(stats.reset_time - time.time()) + 1)
        return self.local.allow(key, per_minute)

    async def ping(self) -> bool:
        """Whether Redis answers (True when budgets are not kept there)."""
        if self._storage is None:
            return True
        try:
            return bool(await self._storage.check())
        except Exception:  # check() should answer False, but a driver may raise on the way
            return False

    async def close(self) -> None:
        client = getattr(getattr(self._storage, "bridge", None), "storage", None)
        if client is not None:
            await client.aclose()

    def _failed(self, exc: StorageError) -> None:
        fallbacks.inc()
        self._down_until = time.monotonic() + self.retry_seconds
        if not self.degraded:
            self.degraded = True
            log.warning("Redis unreachable; request budgets are counted per process: %r", exc.storage_error)

    def _recovered(self) -> None:
        if self.degraded:
            self.degraded = False
            log.warning("Redis reachable again; request budgets are shared by every process")
