"""The delivery worker: plans new outbox rows, claims due deliveries in batches, sends them through
their channels, and records every attempt.

Claiming sets a lease (`lease_until`) in a short transaction; on PostgreSQL the rows are locked FOR
UPDATE SKIP LOCKED, so workers on several machines never hold the same delivery, and the items of a
worker that died come back when their lease ends. Delivery is at least once: a worker killed after
sending and before recording sends again later, with the same delivery id (receivers drop duplicates).

A worker claims only deliveries of the channels it has: a delivery whose channel no worker runs
stays pending (listed to admins) until one does.

Deliveries with the same (channel, target, non-empty ordering key) go out one at a time in id order:
one is not claimed while an earlier one of its key is still pending (being sent, or waiting for a
retry). A dead, delivered or cancelled one no longer holds the others back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from tortoise.connection import connections
from tortoise.expressions import Q, Subquery
from tortoise.functions import Min

from delivery.channels import BatchAware, Channel, Outcome, Preparing, Result
from delivery.config import DeliveryConfig
from delivery.models import Delivery, DeliveryAttempt, DeliveryStatus
from delivery.planning import Planner, plan_pending
from delivery.pruning import prune
from delivery.service import workers_here
from kernel import clock, outbox
from kernel.database import atomic

log = logging.getLogger("delivery.worker")

PLANNING_BATCH = 200  # outbox rows planned per pass
CHANNEL_CHECK_SECONDS = 300.0  # how often a running worker looks for deliveries no channel of its sends


def backoff_seconds(attempts: int, config: DeliveryConfig, retry_after: float | None = None) -> float:
    """How long to wait after the `attempts`-th failed attempt: full jitter over an exponential
    ceiling, and at least the receiver's own Retry-After (which is itself held to the cap)."""
    ceiling = min(config.backoff_cap, config.backoff_base * 2 ** max(attempts - 1, 0))
    delay = random.uniform(0, ceiling)
    if retry_after is not None and retry_after > 0:
        delay = max(delay, min(retry_after, config.backoff_cap))
    return delay


@dataclass(frozen=True)
class _Sent:
    delivery: Delivery
    outcome: Outcome
    duration_ms: int


class DeliveryWorker:
    """Looping (`run`) or one pass at a time (`run_once`); `wake` nudges a running loop at once."""

    # After a nudge, look again this much later each time: the writer may not have committed yet.
    FOLLOW_UPS = (0.0, 0.02, 0.1)

    def __init__(
        self, channels: Sequence[Channel], planners: Sequence[Planner], config: DeliveryConfig
    ) -> None:
        self.channels = {channel.name: channel for channel in channels}
        self.planners = list(planners)
        self.config = config
        self._nudged = asyncio.Event()
        self._stopping = asyncio.Event()
        self._last_prune = time.monotonic()
        self._last_channel_check = -math.inf
        self._reported_channels: set[str] = set()

    def wake(self) -> None:
        self._nudged.set()

    def committed(self, rows: Sequence[outbox.OutboxEvent]) -> None:
        """An outbox listener: this process committed changes, to plan now rather than at the next poll."""
        self._nudged.set()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def stop(self) -> None:
        """Finish the pass in flight (its attempts are recorded), then leave `run`."""
        self._stopping.set()
        self._nudged.set()

    async def run(self) -> None:
        workers_here.add(self)
        outbox.listeners.add(self)  # planning starts when this process commits a change
        try:
            while not self._stopping.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._nudged.wait(), self.config.poll)
                self._nudged.clear()
                for delay in self.FOLLOW_UPS:
                    if self._stopping.is_set():
                        break
                    await asyncio.sleep(delay)
                    while await self._pass_safely() and not self._stopping.is_set():  # a backlog: drain it
                        pass
                await self._housekeeping()
        finally:
            workers_here.discard(self)
            outbox.listeners.discard(self)

    async def run_once(self) -> int:
        """Plan, then claim and deliver one batch; returns how many deliveries were attempted."""
        await plan_pending(self.planners)
        claimed = await self.claim()
        if claimed:
            await self.deliver(claimed)
        return len(claimed)

    async def _pass_safely(self) -> bool:
        """One pass; whether there may be more to do at once (a full batch, or a full planning)."""
        try:
            planned = await plan_pending(self.planners, PLANNING_BATCH)
            claimed = await self.claim()
            if claimed:
                await self.deliver(claimed)
        except Exception:  # a lost connection: claimed items come back after their lease
            log.exception("delivery pass failed")
            return False
        return planned >= PLANNING_BATCH or len(claimed) >= self.config.batch

    async def _housekeeping(self) -> None:
        now = time.monotonic()
        if now - self._last_channel_check >= CHANNEL_CHECK_SECONDS:
            self._last_channel_check = now
            try:
                await self._report_unknown_channels()
            except Exception:
                log.exception("checking for deliveries of unknown channels failed")
        await self._prune_now_and_then()

    async def _report_unknown_channels(self) -> None:
        """Log once per name: due deliveries of a channel this worker does not send stay pending."""
        names = await (
            Delivery.filter(status=DeliveryStatus.PENDING, next_attempt_at__lte=clock.now())
            .exclude(channel__in=[*self.channels, *self._reported_channels])
            .distinct()
            .values_list("channel", flat=True)
        )
        for name in names:
            self._reported_channels.add(str(name))
            log.warning(
                "pending deliveries of channel %r wait: this worker does not send it (it sends: %s)",
                name,
                ", ".join(self.channels) or "nothing",
            )

    async def _prune_now_and_then(self) -> None:
        every = self.config.prune_every
        if every <= 0 or time.monotonic() - self._last_prune < every:
            return
        self._last_prune = time.monotonic()
        try:
            log.info("pruned %s", await prune(self.config))
        except Exception:
            log.exception("pruning failed")

    # Claiming

    def _due(self) -> Q:
        now = clock.now()
        return Q(
            Q(status=DeliveryStatus.PENDING),
            Q(next_attempt_at__lte=now),
            Q(channel__in=list(self.channels)),
            Q(Q(lease_until=None), Q(lease_until__lte=now), join_type="OR"),
        )

    @staticmethod
    def _first_of_its_key() -> Q:
        """Unordered, or the lowest pending id of its (channel, target, ordering key)."""
        heads = (
            Delivery.filter(status=DeliveryStatus.PENDING)
            .exclude(ordering_key="")
            .group_by("channel", "target_id", "ordering_key")
            .annotate(head=Min("id"))
            .values("head")
        )
        return Q(Q(ordering_key=""), Q(id__in=Subquery(heads)), join_type="OR")

    async def claim(self) -> list[Delivery]:
        """Lease a batch of due deliveries to this worker, oldest first."""
        if not self.channels:
            return []
        due = Delivery.filter(self._due())
        if not await due.exists():  # the usual answer when idle, without a transaction
            return []
        candidates = due.filter(self._first_of_its_key()).order_by("id").limit(self.config.batch)
        if not connections.get("default").capabilities.support_for_update:
            # SQLite (one process): read, then one conditional UPDATE, without a read-then-write transaction.
            return await self._lease(await candidates)
        async with atomic():
            return await self._lease(await candidates.select_for_update(skip_locked=True))

    async def _lease(self, rows: list[Delivery]) -> list[Delivery]:
        if not rows:
            return []
        until = clock.now() + self.config.lease
        ids = [row.id for row in rows]
        await Delivery.filter(self._due(), id__in=ids).update(lease_until=until)
        leased = set(await Delivery.filter(id__in=ids, lease_until=until).values_list("id", flat=True))
        claimed = [row for row in rows if row.id in leased]
        for row in claimed:
            row.lease_until = until
        return claimed

    # Delivering

    async def deliver(self, deliveries: Sequence[Delivery]) -> None:
        """Send each claimed delivery (concurrently, each under the timeout), then record them all."""
        limit = asyncio.Semaphore(self.config.concurrency)
        await self._prepare(deliveries)

        async def send(delivery: Delivery) -> _Sent:
            async with limit:
                return await self._send(delivery)

        sent = await asyncio.gather(*(send(d) for d in deliveries))
        await self._record(sent)
        for item in sent:
            if item.outcome.result is Result.GONE:
                await self._gone(self.channels[item.delivery.channel], item.delivery)
        by_channel: dict[str, list[tuple[Delivery, Outcome]]] = {}
        for item in sent:
            by_channel.setdefault(item.delivery.channel, []).append((item.delivery, item.outcome))
        for name, results in by_channel.items():
            await self._after_attempts(self.channels[name], results)

    async def _prepare(self, deliveries: Sequence[Delivery]) -> None:
        """Let each channel that can (`Preparing`) load what its sends in this batch share."""
        by_channel: dict[str, list[Delivery]] = {}
        for delivery in deliveries:
            by_channel.setdefault(delivery.channel, []).append(delivery)
        for name, batch in by_channel.items():
            channel = self.channels[name]
            if isinstance(channel, Preparing):
                try:
                    await channel.prepare(batch)
                except Exception:
                    log.exception("%s.prepare failed; its sends load for themselves", name)

    @staticmethod
    async def _after_attempts(channel: Channel, results: list[tuple[Delivery, Outcome]]) -> None:
        """Tell the channel how its attempts went: once for the batch when it can take them so
        (`BatchAware`), else one call per attempt, in delivery id order."""
        if isinstance(channel, BatchAware):
            try:
                await channel.after_attempts(results)
            except Exception:
                log.exception("%s.after_attempts failed", channel.name)
            return
        for delivery, outcome in results:
            try:
                await channel.after_attempt(delivery, outcome)
            except Exception:
                log.exception("%s.after_attempt failed for delivery %s", channel.name, delivery.id)

    async def _send(self, delivery: Delivery) -> _Sent:
        channel = self.channels[delivery.channel]
        started = time.perf_counter()
        try:
            outcome = await asyncio.wait_for(channel.send(delivery), self.config.timeout)
        except TimeoutError:
            outcome = Outcome(Result.RETRY, error=f"timed out after {self.config.timeout:g} s")
        except Exception as exc:  # a channel's bug or an unexpected failure: retried, never fatal
            log.warning("%s send of delivery %s raised: %r", channel.name, delivery.id, exc)
            outcome = Outcome(Result.RETRY, error=f"{type(exc).__name__}: {exc}"[:2000])
        return _Sent(delivery, outcome, round((time.perf_counter() - started) * 1000))

    def _apply(self, delivery: Delivery, outcome: Outcome) -> None:
        """The delivery's next state after an attempt."""
        now = clock.now()
        delivery.attempts += 1
        delivery.lease_until = None
        result = outcome.result
        if result is Result.DELIVERED:
            delivery.status = DeliveryStatus.DELIVERED
            delivery.finished_at = now
            delivery.last_error = None  # type: ignore[assignment]  # a nullable column
            return
        delivery.last_error = _error_text(outcome)
        if result is Result.RETRY and delivery.attempts < self.config.max_attempts:
            delay = backoff_seconds(delivery.attempts, self.config, outcome.retry_after)
            delivery.next_attempt_at = now + _seconds(delay)
            return
        if result is Result.RETRY:
            delivery.last_error = f"gave up after {delivery.attempts} attempts: {delivery.last_error}"
        delivery.status = DeliveryStatus.DEAD
        delivery.finished_at = now

    async def _record(self, sent: Sequence[_Sent]) -> None:
        now = clock.now()
        attempts = [
            DeliveryAttempt(
                delivery_id=item.delivery.id,
                at=now,
                succeeded=item.outcome.result is Result.DELIVERED,
                status_code=item.outcome.status_code,
                error=item.outcome.error,
                duration_ms=item.duration_ms,
            )
            for item in sent
        ]
        for item in sent:
            self._apply(item.delivery, item.outcome)
        async with atomic():
            await Delivery.bulk_update(
                [item.delivery for item in sent],
                fields=["status", "attempts", "next_attempt_at", "lease_until", "last_error", "finished_at"],
            )
            await DeliveryAttempt.bulk_create(attempts)

    async def _gone(self, channel: Channel, delivery: Delivery) -> None:
        try:
            await channel.gone(delivery)
        except Exception:
            log.exception("%s.gone failed for delivery %s", channel.name, delivery.id)
        cancelled = (
            await Delivery.filter(
                channel=delivery.channel, target_id=delivery.target_id, status=DeliveryStatus.PENDING
            )
            .exclude(id=delivery.id)
            .update(status=DeliveryStatus.CANCELLED, finished_at=clock.now(), lease_until=None)
        )
        log.info(
            "%s target %s is gone: delivery %s dead, %s pending cancelled",
            channel.name,
            delivery.target_id,
            delivery.id,
            cancelled,
        )


def _error_text(outcome: Outcome) -> str:
    if outcome.error:
        return outcome.error
    if outcome.status_code is not None:
        return f"{outcome.result.value}: status {outcome.status_code}"
    return outcome.result.value


def _seconds(value: float) -> timedelta:
    return timedelta(seconds=value)
