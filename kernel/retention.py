"""Retention as data: how long each kind of personal data is kept (a JSON file, validated at load), and
the batch loop every retention sweep runs in.

Each domain removes its own data past its period (`identity.retention`, `media.retention`,
`reports.retention`, `patrols.retention`); `server.retention` runs them all. A batch is one short
transaction that marks what it changed, so a run killed midway leaves only whole batches done and the
next run goes on from there.
"""

from __future__ import annotations

import enum
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any


class DataKind(enum.StrEnum):
    """What a period applies to, and from when it runs."""

    REPORT_PERSONAL = "report_personal"  # reporter link, words, exact place, consent: from the case's end
    CLOSED_CASE_PERSONAL = "closed_case_personal"  # a case's summary, notes, exact place: from its end
    PHOTO_ORIGINAL = "photo_original"  # the evidence original file: from upload
    PHOTO_EXIF = "photo_exif"  # EXIF position and camera: from upload
    PATROL_TRACK = "patrol_track"  # a finished patrol's points: from its finish
    INACTIVE_PHONE = "inactive_phone"  # an account's phone number: from its last sign-in
    SIGN_IN_RECORDS = "sign_in_records"  # one-time code challenges, failed sign-ins: from creation
    ACCESS_LOG = "access_log"  # records of reads of personal data: from the read


class RetentionPolicyError(ValueError):
    """The retention file is malformed: reported when it is loaded, not when the job runs."""


@dataclass(frozen=True)
class RetentionPolicy:
    periods: dict[DataKind, timedelta]
    batch_size: int = 1000

    def cutoff(self, kind: DataKind, now: datetime) -> datetime:
        return now - self.periods[kind]


def parse_policy(raw: Any, source: str = "retention policy") -> RetentionPolicy:
    if not isinstance(raw, dict):
        raise RetentionPolicyError(f"{source}: expected an object")
    unknown = sorted(set(raw) - {"_comment", "periods_days", "batch_size"})
    if unknown:
        raise RetentionPolicyError(f"{source}: unknown keys {unknown}")
    days = raw.get("periods_days")
    if not isinstance(days, dict):
        raise RetentionPolicyError(f"{source}: periods_days: missing or not an object")
    known = {k.value for k in DataKind}
    if unknown := sorted(set(days) - known):
        raise RetentionPolicyError(f"{source}: periods_days: unknown kinds {unknown}")
    if missing := sorted(known - set(days)):
        raise RetentionPolicyError(f"{source}: periods_days: missing {missing} (every kind needs a period)")
    periods: dict[DataKind, timedelta] = {}
    for name, value in days.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise RetentionPolicyError(f"{source}: periods_days.{name}: expected a positive number of days")
        periods[DataKind(name)] = timedelta(days=value)
    batch_size = raw.get("batch_size", 1000)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or not 1 <= batch_size <= 100_000:
        raise RetentionPolicyError(f"{source}: batch_size: expected a whole number from 1 to 100000")
    return RetentionPolicy(periods, batch_size)


def load_policy(path: Path | None = None) -> RetentionPolicy:
    """The policy at `path` (RETENTION_POLICY_PATH), else the shipped `kernel/data/retention.json`."""
    if path is None:
        text = resources.files("kernel.data").joinpath("retention.json").read_text(encoding="utf-8")
        source = "kernel/data/retention.json"
    else:
        text, source = path.read_text(encoding="utf-8"), str(path)
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RetentionPolicyError(f"{source}: not valid JSON: {exc}") from exc
    return parse_policy(raw, source)


@dataclass
class Tally:
    """What a run did: rows per kind, batches, and the longest single batch transaction (the lock bound)."""

    rows: dict[str, int] = field(default_factory=dict)
    batches: int = 0
    longest_transaction_s: float = 0.0
    longest_by_kind: dict[str, float] = field(default_factory=dict)  # seconds, per kind
    durations: dict[str, list[float]] = field(default_factory=dict)  # every batch's seconds, per kind
    files: int = 0
    complete: bool = True  # false when the batch limit stopped the run before the end

    def add(self, kind: str, count: int) -> None:
        self.rows[kind] = self.rows.get(kind, 0) + count

    def __str__(self) -> str:
        done = ", ".join(f"{k} {v}" for k, v in sorted(self.rows.items())) or "nothing past its period"
        stopped = "" if self.complete else "; stopped at the batch limit"
        return (
            f"{done}; {self.files} files removed; {self.batches} batches, longest transaction "
            f"{self.longest_transaction_s * 1000:.1f} ms{stopped}"
        )


class BatchLimitReached(Exception):
    """The run's batch limit is spent: the rest waits for the next run."""


class Batches:
    """Counts and times batches; raises `BatchLimitReached` once `limit` batches ran (None: no limit)."""

    def __init__(self, tally: Tally, limit: int | None = None) -> None:
        self.tally = tally
        self.limit = limit

    async def run(self, kind: str, batch: Callable[[], Awaitable[tuple[int, float] | None]]) -> None:
        """Call `batch` until it answers None (nothing left). It answers (rows changed, seconds its
        transaction took)."""
        while True:
            if self.limit is not None and self.tally.batches >= self.limit:
                self.tally.complete = False
                raise BatchLimitReached
            done = await batch()
            if done is None:
                return
            rows, seconds = done
            self.tally.batches += 1
            self.tally.add(kind, rows)
            self.tally.longest_transaction_s = max(self.tally.longest_transaction_s, seconds)
            self.tally.longest_by_kind[kind] = max(self.tally.longest_by_kind.get(kind, 0.0), seconds)
            self.tally.durations.setdefault(kind, []).append(seconds)


class Stopwatch:
    def __init__(self) -> None:
        self.start = time.perf_counter()

    def seconds(self) -> float:
        return time.perf_counter() - self.start
