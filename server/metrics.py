"""Prometheus metrics: GraphQL latency by operation and outcome, and what is measured at each scrape
(outbox lag, pending deliveries, the database pool). The domains' counters (uploads, track ingest)
and the rate limiter's fallbacks are in the same registry (kernel.metrics).

Served at `/metrics` (server.operations) with the bearer token METRICS_TOKEN. Each process answers
for itself: scrape every API process and the worker (docs/deployment.md).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Iterator
from datetime import datetime

from prometheus_client import Gauge, Histogram, generate_latest
from strawberry.extensions import SchemaExtension
from strawberry.types.graphql import OperationType
from tortoise.connection import get_connection

from delivery.models import Delivery, DeliveryStatus
from kernel import clock
from kernel.metrics import REGISTRY
from kernel.outbox import OutboxEvent

log = logging.getLogger("server.metrics")

# Seconds: a cached read takes a millisecond, a photo's processing a second or more.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

graphql_seconds = Histogram(
    "envcase_graphql_request_seconds",
    "GraphQL operations (queries and mutations) from parsing to result, by operation name and outcome",
    ["operation", "outcome"],  # outcome: ok, user_error (a payload's userErrors), error, rejected
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)
outbox_lag = Gauge(
    "envcase_outbox_lag_seconds",
    "Age of the oldest outbox row not yet relayed (published) or planned into deliveries (0: none)",
    ["stage"],  # published, planned
    registry=REGISTRY,
)
deliveries_pending = Gauge(
    "envcase_deliveries_pending",
    "Deliveries waiting for an attempt (due now or retrying later)",
    registry=REGISTRY,
)
deliveries_overdue = Gauge(
    "envcase_deliveries_overdue_seconds",
    "How long the most overdue pending delivery has been due (0: none due)",
    registry=REGISTRY,
)
db_pool = Gauge(
    "envcase_db_pool_connections",
    "The database connection pool of this process (PostgreSQL), by state",
    ["state"],  # size, idle, in_use, max
    registry=REGISTRY,
)

# Operation names are the client's text: a bounded set of plain names is kept, the rest counted as one.
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
MAX_OPERATION_NAMES = 300
_seen_names: set[str] = set()


def operation_label(name: str | None) -> str:
    if not name:
        return "anonymous"
    if name in _seen_names:
        return name
    if _NAME.fullmatch(name) is None or len(_seen_names) >= MAX_OPERATION_NAMES:
        return "other"
    _seen_names.add(name)
    return name


def _has_user_errors(data: object) -> bool:
    if not isinstance(data, dict):
        return False
    return any(isinstance(payload, dict) and payload.get("userErrors") for payload in data.values())


class OperationMetrics(SchemaExtension):
    """Times each query and mutation (subscriptions live on; they are not timed)."""

    def on_operation(self) -> Iterator[None]:
        started = time.perf_counter()
        yield
        context = self.execution_context
        try:
            if context.graphql_document is not None and context.operation_type is OperationType.SUBSCRIPTION:
                return
        except RuntimeError:  # no such operation in the document: a rejected request
            pass
        result = context.result
        if context.pre_execution_errors or result is None:
            outcome, name = "rejected", None
        elif result.errors:
            outcome, name = "error", context.operation_name
        elif _has_user_errors(result.data):
            outcome, name = "user_error", context.operation_name
        else:
            outcome, name = "ok", context.operation_name
        operation = operation_label(name) if outcome != "rejected" else "-"
        graphql_seconds.labels(operation, outcome).observe(time.perf_counter() - started)


def _age(since: datetime | None, now: datetime) -> float:
    return max(0.0, (now - since).total_seconds()) if since is not None else 0.0


async def _measure_database() -> None:
    now = clock.now()
    unpublished = await OutboxEvent.filter(published_at=None).order_by("id").first().values("created_at")
    unplanned = await OutboxEvent.filter(planned_at=None).order_by("id").first().values("created_at")
    outbox_lag.labels("published").set(_age(unpublished["created_at"] if unpublished else None, now))
    outbox_lag.labels("planned").set(_age(unplanned["created_at"] if unplanned else None, now))
    pending = Delivery.filter(status=DeliveryStatus.PENDING)
    deliveries_pending.set(await pending.count())
    due = await pending.filter(next_attempt_at__lte=now).order_by("next_attempt_at").first()
    deliveries_overdue.set(_age(due.next_attempt_at if due else None, now))


def _measure_pool() -> None:
    pool = getattr(get_connection("default"), "_pool", None)
    if pool is None or not hasattr(pool, "get_size"):  # SQLite: one connection, no pool
        return
    size, idle = pool.get_size(), pool.get_idle_size()
    db_pool.labels("size").set(size)
    db_pool.labels("idle").set(idle)
    db_pool.labels("in_use").set(size - idle)
    db_pool.labels("max").set(pool.get_max_size())


async def render(timeout_seconds: float = 2.0) -> bytes:
    """The registry in Prometheus' text format, with the database figures measured now (the last
    figures stay when the database does not answer in time)."""
    try:
        _measure_pool()
        await asyncio.wait_for(_measure_database(), timeout_seconds)
    except Exception as exc:  # a scrape still answers: latency and counters matter most when the DB fails
        log.warning("metrics: database figures not measured: %r", exc)
    return generate_latest(REGISTRY)
