"""The delivery worker against a real HTTP receiver: retries with backoff then a dead letter, a slow
target holding up no one, a gone target cancelling its other deliveries, one-at-a-time order per key,
planners that fail losing nothing, leases, and (PostgreSQL) two workers never sending one item at once."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from datetime import timedelta
from typing import cast

import pytest
import pytest_asyncio
from tortoise.context import TortoiseContext

from delivery.channels import Outcome, Result
from delivery.config import DeliveryConfig
from delivery.models import Delivery, DeliveryAttempt, DeliveryStatus
from delivery.planning import plan_pending
from delivery.pruning import prune
from delivery.service import enqueue, new_delivery, workers_here
from delivery.worker import DeliveryWorker, backoff_seconds
from kernel import clock
from kernel.database import atomic
from kernel.outbox import OutboxEvent, change, emit
from tests.conftest import IS_POSTGRES
from tests.delivery.receiver import PostChannel, Receiver, running_receiver

FAST = DeliveryConfig(backoff_base=0.001, backoff_cap=0.005, max_attempts=3, timeout=5, poll=0.05)


@pytest_asyncio.fixture
async def receiver(db: TortoiseContext) -> AsyncIterator[Receiver]:
    async with running_receiver() as r:
        yield r


@pytest_asyncio.fixture
async def channel(receiver: Receiver) -> AsyncIterator[PostChannel]:
    c = PostChannel(receiver.url)
    yield c
    await c.close()


async def add(target: int, key: str = "", channel: str = "test", n: int = 1) -> list[Delivery]:
    rows = [new_delivery(channel, target, {"n": i}, ordering_key=key) for i in range(n)]
    await enqueue(*rows)
    return list(await Delivery.filter(target_id=target, channel=channel).order_by("id"))


async def drain(worker: DeliveryWorker, passes: int = 200) -> None:
    """Run passes until nothing is pending (retries are due within milliseconds in these configs)."""
    for _ in range(passes):
        await worker.run_once()
        if not await Delivery.filter(
            status=DeliveryStatus.PENDING, channel__in=list(worker.channels)
        ).exists():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("deliveries still pending")


async def test_a_failing_target_is_retried_then_dead_and_a_good_one_delivered(
    receiver: Receiver, channel: PostChannel
) -> None:
    receiver.answer(1, 500)
    receiver.answer(2, 503, 200)
    (bad,) = await add(1)
    (good,) = await add(2)
    await drain(DeliveryWorker([channel], [], FAST))

    await bad.refresh_from_db()
    assert bad.status is DeliveryStatus.DEAD and bad.attempts == 3 and bad.finished_at is not None
    assert bad.last_error is not None and "gave up after 3 attempts" in bad.last_error
    attempts = await DeliveryAttempt.filter(delivery_id=bad.id).order_by("id")
    assert [(a.succeeded, a.status_code) for a in attempts] == [(False, 500)] * 3
    # Every retry carries the same delivery id, so a receiver can drop duplicates.
    assert receiver.ids_for(1) == [f"msg_{bad.id}"] * 3

    await good.refresh_from_db()
    assert good.status is DeliveryStatus.DELIVERED and good.attempts == 2 and good.last_error is None
    attempts = await DeliveryAttempt.filter(delivery_id=good.id).order_by("id")
    assert [(a.succeeded, a.status_code) for a in attempts] == [(False, 503), (True, 200)]
    assert (good.id, Result.DELIVERED) in channel.after and (bad.id, Result.RETRY) in channel.after


async def test_an_unreachable_receiver_or_a_raising_channel_is_retried_never_fatal(
    receiver: Receiver, channel: PostChannel
) -> None:
    down = PostChannel("http://127.0.0.1:9", name="down")  # nothing listens on the discard port

    class Broken(PostChannel):
        async def send(self, delivery: Delivery) -> Outcome:
            raise RuntimeError("a bug in the channel")

    broken = Broken(receiver.url, name="broken")
    (a,) = await add(1, channel="down")
    (b,) = await add(1, channel="broken")
    worker = DeliveryWorker([down, broken], [], FAST)
    assert await worker.run_once() == 2
    for row in (a, b):
        await row.refresh_from_db()
        assert row.status is DeliveryStatus.PENDING and row.attempts == 1 and row.lease_until is None
    assert a.last_error is not None and "unreachable" in a.last_error
    assert b.last_error == "RuntimeError: a bug in the channel"
    await down.close()
    await broken.close()


async def test_a_slow_target_times_out_without_holding_up_the_others(
    receiver: Receiver, channel: PostChannel
) -> None:
    receiver.answer(1, "sleep:30")
    (slow,) = await add(1)
    fast = await add(2, n=3)
    worker = DeliveryWorker([channel], [], DeliveryConfig(timeout=0.5, backoff_base=60))
    assert await worker.run_once() == 4
    for row in fast:
        await row.refresh_from_db()
        assert row.status is DeliveryStatus.DELIVERED
    await slow.refresh_from_db()
    assert slow.status is DeliveryStatus.PENDING and slow.last_error == "timed out after 0.5 s"
    assert slow.next_attempt_at > clock.now() - timedelta(seconds=1)


async def test_a_gone_target_is_dead_and_its_other_pending_deliveries_cancelled(
    receiver: Receiver, channel: PostChannel
) -> None:
    receiver.answer(1, 410)
    first, *siblings = await add(1, n=3)
    other = await add(2, n=1)
    config = DeliveryConfig(batch=1)
    worker = DeliveryWorker([channel], [], config)
    assert await worker.run_once() == 1
    await first.refresh_from_db()
    assert first.status is DeliveryStatus.DEAD and first.attempts == 1
    assert channel.gone_targets == [1]
    for row in siblings:
        await row.refresh_from_db()
        assert row.status is DeliveryStatus.CANCELLED and row.attempts == 0
    await drain(worker)
    assert receiver.ids_for(1) == [f"msg_{first.id}"]
    await other[0].refresh_from_db()
    assert other[0].status is DeliveryStatus.DELIVERED


async def test_a_batch_aware_channel_hears_of_a_whole_batch_at_once(receiver: Receiver) -> None:
    class Batching(PostChannel):
        def __init__(self, url: str) -> None:
            super().__init__(url)
            self.batches: list[list[tuple[int, Result]]] = []

        async def after_attempts(self, results: Sequence[tuple[Delivery, Outcome]]) -> None:
            self.batches.append([(d.id, o.result) for d, o in results])

    receiver.answer(2, 500)
    rows = [*await add(1, n=2), *await add(2)]
    channel = Batching(receiver.url)
    assert await DeliveryWorker([channel], [], FAST).run_once() == 3
    assert channel.batches == [
        [(rows[0].id, Result.DELIVERED), (rows[1].id, Result.DELIVERED), (rows[2].id, Result.RETRY)]
    ]
    assert channel.after == []  # not told twice
    await channel.close()


async def test_a_permanent_refusal_is_dead_at_once(receiver: Receiver, channel: PostChannel) -> None:
    receiver.answer(1, 400)
    (row,) = await add(1)
    await DeliveryWorker([channel], [], FAST).run_once()
    await row.refresh_from_db()
    assert row.status is DeliveryStatus.DEAD and row.attempts == 1 and row.last_error == "refused: 400"


async def test_deliveries_of_one_key_go_out_one_at_a_time_in_order(
    receiver: Receiver, channel: PostChannel
) -> None:
    receiver.answer(1, 500, 200)  # the first attempt fails, then all succeed
    ordered = await add(1, key="case:7", n=3)
    (other_case,) = [d for d in await add(1, key="case:8") if d.ordering_key == "case:8"]
    (unordered,) = [d for d in await add(1) if d.ordering_key == ""]
    worker = DeliveryWorker([channel], [], DeliveryConfig(backoff_base=60))  # the retry waits
    assert await worker.run_once() == 3  # the head of case:7, case:8 and the unordered one
    for row in ordered[1:]:
        await row.refresh_from_db()
        assert row.attempts == 0  # held back while the first of its key waits for its retry
    assert await worker.run_once() == 0
    # The retry comes due; the rest follow it, one per pass, in order.
    await Delivery.filter(id=ordered[0].id).update(next_attempt_at=clock.now())
    await drain(worker)
    assert receiver.ids_for(1).count(f"msg_{ordered[0].id}") == 2
    case7 = [i for i in receiver.ids_for(1) if i in {f"msg_{d.id}" for d in ordered}]
    assert case7 == [f"msg_{ordered[0].id}", *[f"msg_{d.id}" for d in ordered]]
    assert f"msg_{other_case.id}" in receiver.ids_for(1) and f"msg_{unordered.id}" in receiver.ids_for(1)


async def test_a_dead_delivery_no_longer_holds_its_key_back(receiver: Receiver, channel: PostChannel) -> None:
    receiver.answer(1, 400, 200)
    first, second = await add(1, key="case:7", n=2)
    worker = DeliveryWorker([channel], [], FAST)
    await drain(worker)
    await first.refresh_from_db()
    await second.refresh_from_db()
    assert (first.status, second.status) == (DeliveryStatus.DEAD, DeliveryStatus.DELIVERED)


async def test_a_leased_delivery_is_not_claimed_until_its_lease_ends(
    receiver: Receiver, channel: PostChannel
) -> None:
    (row,) = await add(1)
    # A worker that died (SIGKILL) mid-batch leaves its claim behind.
    await Delivery.filter(id=row.id).update(lease_until=clock.now() + timedelta(seconds=60))
    worker = DeliveryWorker([channel], [], FAST)
    assert await worker.run_once() == 0
    assert receiver.received == []
    await Delivery.filter(id=row.id).update(lease_until=clock.now() - timedelta(seconds=1))
    assert await worker.run_once() == 1
    await row.refresh_from_db()
    assert row.status is DeliveryStatus.DELIVERED and row.lease_until is None
    assert receiver.ids_for(1) == [f"msg_{row.id}"]


async def test_deliveries_of_a_channel_this_worker_lacks_stay_pending_and_unclaimed(
    receiver: Receiver, channel: PostChannel, caplog: pytest.LogCaptureFixture
) -> None:
    (row,) = await add(1, channel="carrier-pigeon")
    assert await DeliveryWorker([channel], [], FAST).run_once() == 0
    await row.refresh_from_db()
    assert row.status is DeliveryStatus.PENDING and row.lease_until is None and row.attempts == 0
    # A running worker says so in its log, once per channel name.
    for worker in (DeliveryWorker([channel], [], FAST), DeliveryWorker([], [], FAST)):
        with caplog.at_level(logging.WARNING, logger="delivery.worker"):
            caplog.clear()
            await worker._report_unknown_channels()
            await add(2, channel="carrier-pigeon")
            await worker._report_unknown_channels()
        assert [r.getMessage() for r in caplog.records] == [
            "pending deliveries of channel 'carrier-pigeon' wait: this worker does not send it "
            f"(it sends: {', '.join(worker.channels) or 'nothing'})"
        ]


def test_backoff_has_full_jitter_under_an_exponential_cap_and_honours_retry_after() -> None:
    config = DeliveryConfig(backoff_base=2, backoff_cap=100)
    samples = [backoff_seconds(3, config) for _ in range(500)]
    assert all(0 <= s <= 8 for s in samples) and max(samples) > 4 and min(samples) < 4
    assert all(backoff_seconds(30, config) <= 100 for _ in range(100))
    assert all(backoff_seconds(1, config, retry_after=50) >= 50 for _ in range(100))
    assert backoff_seconds(1, config, retry_after=10_000) == 100


# Planning


async def write_changes(*kinds: str) -> None:
    async with atomic():
        await emit(*(change(kind, "case", 7, [], clock.now()) for kind in kinds))


class Planner:
    """Plans one delivery per change to target 1, in the case's order; fails on `fail_on` kinds."""

    def __init__(self, *fail_on: str) -> None:
        self.fail_on = set(fail_on)

    async def __call__(self, event: OutboxEvent) -> Sequence[Delivery]:
        if event.kind in self.fail_on:
            raise RuntimeError(f"cannot plan {event.kind}")
        return [new_delivery("test", 1, {"kind": event.kind}, event_id=event.id, ordering_key="case:7")]


async def test_planning_makes_deliveries_once_and_a_failing_planner_loses_nothing(
    receiver: Receiver, channel: PostChannel
) -> None:
    await write_changes("accept", "start", "resolve")
    assert await plan_pending([Planner("start")]) == 2
    planned = await OutboxEvent.filter(planned_at__not_isnull=True).values_list("kind", flat=True)
    assert sorted(cast(list[str], planned)) == ["accept", "resolve"]
    payloads = cast(list[object], await Delivery.all().values_list("payload", flat=True))
    assert sorted(payloads, key=str) == [
        {"kind": "accept"},
        {"kind": "resolve"},
    ]
    assert await plan_pending([Planner("start")]) == 0  # still failing: still unplanned
    assert await plan_pending([Planner()]) == 1  # fixed: planned now
    assert await plan_pending([Planner()]) == 0  # once only
    assert await OutboxEvent.filter(planned_at=None).count() == 0
    worker = DeliveryWorker([channel], [Planner()], FAST)
    await drain(worker)
    assert [r.body["kind"] for r in receiver.received] == ["accept", "resolve", "start"]


async def test_a_worker_without_planners_leaves_the_outbox_unplanned(channel: PostChannel) -> None:
    await write_changes("accept")
    assert await DeliveryWorker([channel], [], FAST).run_once() == 0
    assert await OutboxEvent.filter(planned_at=None).count() == 1


async def test_the_running_loop_plans_and_delivers_when_woken(
    receiver: Receiver, channel: PostChannel
) -> None:
    worker = DeliveryWorker([channel], [Planner()], DeliveryConfig(poll=30))
    task = asyncio.create_task(worker.run())
    try:
        await asyncio.sleep(0.05)
        await write_changes("accept")  # the outbox write nudges the worker: no 30 s poll
        for _ in range(200):
            if receiver.received:
                break
            await asyncio.sleep(0.01)
        assert [r.body["kind"] for r in receiver.received] == ["accept"]
    finally:
        worker.stop()  # leaves after the pass in flight
        await asyncio.wait_for(task, 5)
    assert worker not in workers_here


# Pruning


async def test_pruning_removes_old_finished_rows_and_keeps_the_rest(db: TortoiseContext) -> None:
    long_ago = clock.now() - timedelta(days=40)
    await write_changes("old", "unplanned", "recent")
    await OutboxEvent.filter(kind="old").update(
        created_at=long_ago, published_at=long_ago, planned_at=long_ago
    )
    await OutboxEvent.filter(kind="unplanned").update(created_at=long_ago, published_at=long_ago)
    await OutboxEvent.filter(kind="recent").update(published_at=clock.now(), planned_at=clock.now())
    delivered, dead, pending, fresh = await add(1, n=4)
    await Delivery.filter(id__in=[delivered.id, dead.id]).update(finished_at=long_ago)
    await Delivery.filter(id=delivered.id).update(status=DeliveryStatus.DELIVERED)
    await Delivery.filter(id=dead.id).update(status=DeliveryStatus.DEAD)
    await Delivery.filter(id=fresh.id).update(status=DeliveryStatus.DELIVERED, finished_at=clock.now())
    await DeliveryAttempt.create(delivery_id=delivered.id, at=long_ago, succeeded=True, duration_ms=1)

    pruned = await prune(DeliveryConfig(), batch=1)
    assert (pruned.outbox, pruned.deliveries) == (1, 1)
    kinds = cast(list[str], await OutboxEvent.all().values_list("kind", flat=True))
    assert sorted(kinds) == ["recent", "unplanned"]
    assert sorted(await Delivery.all().values_list("id", flat=True)) == [dead.id, pending.id, fresh.id]
    assert await DeliveryAttempt.all().count() == 0


# Several workers (PostgreSQL)


@pytest.mark.skipif(not IS_POSTGRES, reason="SKIP LOCKED claims are PostgreSQL's; SQLite runs one worker")
async def test_two_workers_never_send_the_same_delivery_at_once(receiver: Receiver) -> None:
    for target in range(1, 5):
        receiver.answer(target, "sleep:0.01")
        await add(target, n=50)
    await add(9, key="case:1", n=10)  # ordered ones too: never two of the key at once
    channels = [PostChannel(receiver.url), PostChannel(receiver.url)]
    config = DeliveryConfig(batch=20, backoff_base=0.001, backoff_cap=0.005)
    workers = [DeliveryWorker([c], [], config) for c in channels]
    await asyncio.gather(*(drain(w, passes=500) for w in workers))
    assert receiver.overlaps == []
    ids = [r.message_id for r in receiver.received]
    assert len(ids) == len(set(ids)) == 210  # each once: no lease ran out
    assert await Delivery.filter(status=DeliveryStatus.DELIVERED).count() == 210
    case1 = [f"msg_{d.id}" for d in await Delivery.filter(target_id=9).order_by("id")]
    assert receiver.ids_for(9) == case1
    for c in channels:
        await c.close()


@pytest.mark.skipif(not IS_POSTGRES, reason="SKIP LOCKED claims are PostgreSQL's; SQLite runs one worker")
async def test_two_workers_plan_each_change_once_in_order(receiver: Receiver, channel: PostChannel) -> None:
    await write_changes(*(f"step{i}" for i in range(30)))
    gate, entered = asyncio.Event(), asyncio.Event()

    class Slow(Planner):
        async def __call__(self, event: OutboxEvent) -> Sequence[Delivery]:
            entered.set()
            await gate.wait()
            return await super().__call__(event)

    first = asyncio.create_task(plan_pending([Slow()], limit=5))
    await asyncio.wait_for(entered.wait(), 5)  # the first worker is planning, holding its rows
    assert await asyncio.wait_for(plan_pending([Planner()], limit=5), 5) == 0  # the other one: no wait
    gate.set()
    assert await first == 5
    while await plan_pending([Planner()], limit=7):
        pass
    events = await Delivery.all().order_by("id").values_list("event_id", flat=True)
    assert events == sorted(events) and len(events) == len(set(events)) == 30
