"""The contract between the worker and what sends: a channel takes a claimed delivery and says how
it went; the worker alone decides retries, dead letters and the attempt log."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol, runtime_checkable

from delivery.models import Delivery


class Result(StrEnum):
    DELIVERED = "delivered"
    RETRY = "retry"  # a transient failure (timeout, 5xx, throttled): try again after a backoff
    FAILED = "failed"  # a permanent refusal (4xx, a rejected template): retrying cannot help
    GONE = "gone"  # the target no longer exists (410, an expired push subscription): `Channel.gone`


@dataclass(frozen=True)
class Outcome:
    result: Result
    status_code: int | None = None
    error: str | None = None
    # A receiver's own "try again after" (Retry-After, a provider's throttle), in seconds.
    retry_after: float | None = None


class Channel(Protocol):
    name: str  # the `Delivery.channel` it sends

    async def send(self, delivery: Delivery) -> Outcome:
        """Send once; never raise for the receiver's failures (answer RETRY/FAILED/GONE instead)."""
        ...

    async def gone(self, delivery: Delivery) -> None:
        """The target is gone: disable or remove it (its other pending deliveries are cancelled)."""
        ...

    async def after_attempt(self, delivery: Delivery, outcome: Outcome) -> None:
        """Called after every attempt, once it is recorded: a channel may keep its target's health
        (webhooks count consecutive failures per endpoint and disable it past a limit)."""
        ...


@runtime_checkable
class BatchAware(Protocol):
    """Optional, beside `Channel`: a channel with `after_attempts` is told of a whole batch's attempts
    in one call (in delivery id order) instead of one `after_attempt` call each, so it can keep its
    targets' health in a few queries (a webhook batch may hold a hundred attempts)."""

    async def after_attempts(self, results: Sequence[tuple[Delivery, Outcome]]) -> None: ...


@runtime_checkable
class Preparing(Protocol):
    """Optional, beside `Channel`: a channel with `prepare` is given a batch's deliveries of its own
    before they are sent, to load what their sends share in a few queries (webhook endpoints and
    their secrets) instead of a few queries per send. What it loads serves that batch only: the
    worker calls `after_attempts` (or `after_attempt`) once the batch is recorded. A `prepare` that
    raises is logged and the sends go ahead (loading for themselves)."""

    async def prepare(self, deliveries: Sequence[Delivery]) -> None: ...
