"""Timing helpers the request benchmarks share."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any


async def timed(call: Callable[[], Awaitable[Any]], seconds: float) -> list[float]:
    """Milliseconds per call, calling one at a time for about `seconds` (at least 3 calls)."""
    times: list[float] = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end or len(times) < 3:
        began = time.perf_counter()
        await call()
        times.append((time.perf_counter() - began) * 1000)
    return times


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]
