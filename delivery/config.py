"""Batches, leases, retries and retention of the delivery worker, built by the server from its settings."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta


@dataclass(frozen=True)
class DeliveryConfig:
    batch: int = 100  # deliveries claimed per pass
    # A claimed delivery is the worker's until then; a worker that died gives its items back after it.
    lease: timedelta = timedelta(seconds=60)
    max_attempts: int = 8  # then the delivery is dead (an admin may replay it)
    # Retry n waits a random time in [0, min(cap, base * 2**(n-1))] ("full jitter"), and at least the
    # receiver's own Retry-After (itself at most the cap).
    backoff_base: float = 5.0
    backoff_cap: float = 3600.0
    timeout: float = 10.0  # per send; a slow receiver holds only its own delivery
    concurrency: int = 32  # sends in flight per worker
    poll: float = 1.0  # seconds between passes when nothing nudged the worker
    # Published and planned outbox rows, and delivered or cancelled deliveries (with their attempts),
    # are deleted after these; dead deliveries stay until replayed or handled.
    outbox_retention: timedelta = timedelta(days=30)
    delivered_retention: timedelta = timedelta(days=30)
    prune_every: float = 3600.0  # seconds between the worker's pruning passes; 0: never
