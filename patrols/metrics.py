"""A finished patrol's metrics, computed from its stored points (and again when late points arrive).

Flags are written onto the points (never deleting one); the metrics, coverage of the assigned area
and authenticity findings go onto the patrol row.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Any

import anyio

from kernel import clock
from kernel.rawsql import as_datetime, as_json, fetch
from patrols.models import Patrol, PatrolArea, TrackPoint
from patrols.rules import AreaKind
from patrols.track import (
    AuthenticityFlag,
    PatrolMode,
    TrackAnalysis,
    TrackMetrics,
    analyse_track,
    area_coverage,
    line_coverage,
)
from patrols.track import (
    TrackPoint as Fix,
)

LATE_AFTER = timedelta(days=1)  # points later than this after the finish mark the upload as late
RIVER_BUFFER_M = 50.0
SWATH_M = 100.0


def _days(delta: timedelta) -> str:
    days = delta.total_seconds() / 86400
    return f"{days:.0f} days" if days >= 1.5 else f"{delta.total_seconds() / 3600:.0f} h"


def pause_times(pause: list[str | None]) -> tuple[datetime, datetime | None]:
    """A stored pause, `[paused_at, resumed_at or null]` in ISO form, as times."""
    paused_at, resumed_at = pause
    assert paused_at is not None, "a pause is stored with its start"
    return datetime.fromisoformat(paused_at), datetime.fromisoformat(resumed_at) if resumed_at else None


def paused_seconds(pauses: list[list[str | None]], first: datetime, last: datetime) -> float:
    """Seconds of the pauses that fall inside [first, last] (an open pause lasts to `last`)."""
    total = 0.0
    for start, end in pauses:
        begin = max(datetime.fromisoformat(start), first) if start else first
        stop = min(datetime.fromisoformat(end), last) if end else last
        total += max(0.0, (stop - begin).total_seconds())
    return total


def signals_json(metrics: TrackMetrics) -> dict[str, Any]:
    """The straightness and regularity signals with what they measured, as stored on the patrol."""
    return {"straightness": asdict(metrics.straightness), "regularity": asdict(metrics.regularity)}


def coverage_of(area: PatrolArea, analysis: TrackAnalysis) -> float:
    """River segment: share of its length within 50 m of the track. Lake: share of the shore within
    50 m. Forest: share of the area inside a 100 m swath along the track."""
    if area.kind is AreaKind.RIVER_SEGMENT:
        return line_coverage(analysis, area.geometry, buffer_m=RIVER_BUFFER_M).ratio
    covered = area_coverage(analysis, area.geometry, swath_m=SWATH_M, boundary_buffer_m=RIVER_BUFFER_M)
    return covered.boundary_ratio if area.kind is AreaKind.LAKE else covered.area_ratio


async def load_fixes(patrol_id: int) -> tuple[list[Fix], dict[int, Any]]:
    """The stored fixes of a patrol and their current flags (by seq)."""
    rows = await fetch(
        TrackPoint._meta.db,
        'SELECT "seq", "t", "lat", "lon", "accuracy_m", "speed_mps", "mock", "flags" FROM "track_points" '
        'WHERE "patrol_id" = {}',
        [patrol_id],
    )
    fixes = [
        Fix(seq, as_datetime(t), lat, lon, acc, speed, bool(mock))
        for seq, t, lat, lon, acc, speed, mock, _ in rows
    ]
    return fixes, {row[0]: as_json(row[7]) for row in rows if row[7] is not None}


async def _write_flags(patrol_id: int, analysis: TrackAnalysis, stored: dict[int, Any]) -> None:
    wanted: dict[int, dict[str, str]] = defaultdict(dict)
    for issue in analysis.issues:
        wanted[issue.seq][issue.flag.value] = issue.reason
    changes: dict[str, tuple[dict[str, str] | None, list[int]]] = {}
    for seq in set(wanted) | {s for s, f in stored.items() if f}:
        new = wanted.get(seq) or None
        if new != (stored.get(seq) or None):
            key = repr(sorted(new.items())) if new else ""
            changes.setdefault(key, (new, []))[1].append(seq)
    for value, seqs in changes.values():
        await TrackPoint.filter(patrol_id=patrol_id, seq__in=seqs).update(flags=value)


def late_by(patrol: Patrol) -> timedelta | None:
    """How long after the finish the latest points arrived, when that is late."""
    if patrol.finished_received_at is None or patrol.last_upload_at is None:
        return None
    delay = patrol.last_upload_at - patrol.finished_received_at
    return delay if delay > LATE_AFTER else None


def _analyse(
    area: PatrolArea,
    fixes: list[Fix],
    mode: PatrolMode,
    received_at: datetime,
    device_sent_at: datetime | None,
    pauses: list[tuple[datetime, datetime | None]],
) -> tuple[TrackAnalysis, float]:
    analysis = analyse_track(
        fixes, mode, received_at=received_at, device_sent_at=device_sent_at, pauses=pauses
    )
    return analysis, coverage_of(area, analysis)


async def recompute(patrol: Patrol) -> Patrol:
    """Analyse the stored track of a finished patrol and store the results on it."""
    area = await PatrolArea.get(id=patrol.area_id)
    fixes, stored_flags = await load_fixes(patrol.id)
    now = clock.now()
    sent = None if patrol.clock_skew_s is None else now - timedelta(seconds=patrol.clock_skew_s)
    # CPU-bound on a long track: run it in a worker thread, off the event loop.
    analysis, coverage = await anyio.to_thread.run_sync(
        _analyse, area, fixes, PatrolMode(patrol.mode), now, sent, [pause_times(p) for p in patrol.pauses]
    )
    await _write_flags(patrol.id, analysis, stored_flags)
    m = analysis.metrics
    valid = analysis.valid_points
    duration = 0.0
    if len(valid) >= 2:
        duration = max(0.0, m.duration_s - paused_seconds(patrol.pauses, valid[0].t, valid[-1].t))
    findings = [(f.flag.value, f.reason) for f in analysis.authenticity.findings]
    late = late_by(patrol)
    patrol.late_upload = late is not None
    if late is not None:
        findings.append(
            (AuthenticityFlag.LATE_UPLOAD.value, f"points were uploaded {_days(late)} after the finish")
        )
    patrol.valid_point_count = m.valid_points
    patrol.flagged_point_count = len(fixes) - m.valid_points
    patrol.duration_s = duration
    patrol.moving_time_s = m.moving_time_s
    patrol.distance_m = m.distance_m
    patrol.raw_distance_m = m.raw_distance_m
    patrol.pause_time_s = m.pause_time_s
    patrol.gap_time_s = m.gap_time_s
    patrol.track_signals = signals_json(m)
    patrol.coverage = coverage
    patrol.authenticity_flags = [flag for flag, _ in findings]
    patrol.authenticity_reasons = [reason for _, reason in findings]
    patrol.metrics_at = now
    await patrol.save(
        update_fields=[
            "valid_point_count",
            "flagged_point_count",
            "duration_s",
            "moving_time_s",
            "distance_m",
            "raw_distance_m",
            "pause_time_s",
            "gap_time_s",
            "track_signals",
            "coverage",
            "authenticity_flags",
            "authenticity_reasons",
            "late_upload",
            "metrics_at",
        ]
    )
    return patrol
