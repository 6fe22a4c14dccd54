"""The process's Prometheus counters that the domains feed (uploads, track ingest), in one registry.

The server's `/metrics` endpoint (server.metrics) exposes this registry together with what it measures
itself (request latency, outbox lag, the database pool, rate-limit fallbacks). Each process keeps its
own counts: Prometheus scrapes every process and sums them.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, ProcessCollector

REGISTRY = CollectorRegistry(auto_describe=True)
ProcessCollector(registry=REGISTRY)  # this process's CPU seconds, memory and open files (process_*)

upload_bytes = Counter(
    "envcase_upload_bytes",
    "Bytes of resumable photo uploads received and kept",
    registry=REGISTRY,
)
photos_accepted = Counter(
    "envcase_photos_accepted",
    "Photos verified and stored (new bytes, or the same bytes again for their owner)",
    registry=REGISTRY,
)
track_batches = Counter(
    "envcase_track_batches",
    "Batches of track points received",
    registry=REGISTRY,
)
track_points = Counter(
    "envcase_track_points",
    "Track points received, by what became of them",
    ["result"],  # stored, duplicate, refused
    registry=REGISTRY,
)
