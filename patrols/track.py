"""Patrol GPS tracks: point quality flags, metrics, an authenticity assessment and area coverage.

Pure functions over plain point records. Nothing is ever deleted: a doubtful point gets a flag with a
reason and is left out of distance, time and coverage (patrol-anchors.md §4, "flag, don't delete").
Work is done on numpy arrays so a 3-hour 1 Hz track (10,800 points) is analysed in milliseconds.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from kernel.geo import LocalPlane, haversine_m, step_lengths_m


@dataclass(frozen=True, slots=True)
class TrackPoint:
    seq: int  # client sequence number, monotonic per patrol
    t: datetime  # device GNSS time, timezone-aware UTC
    lat: float  # WGS-84
    lon: float
    accuracy_m: float | None = None
    speed_mps: float | None = None
    mock: bool = False


class PatrolMode(enum.StrEnum):
    FOOT = "FOOT"
    VEHICLE = "VEHICLE"
    BOAT = "BOAT"
    DRONE = "DRONE"

    @property
    def plausible_speed_mps(self) -> float:
        """Highest believable *average moving* speed; above it the whole patrol is suspicious."""
        return _PLAUSIBLE_SPEED_MPS[self]

    @property
    def impossible_speed_mps(self) -> float:
        """A single step faster than this is a bad fix, not movement (spike detection)."""
        return _IMPOSSIBLE_SPEED_MPS[self]


# Foot: 15 km/h average is already running (patrol-anchors §4); 12 m/s (43 km/h) in one step is beyond
# any sprinter. Vehicle: 120 / 250 km/h (EarthRanger uses 200 km/h for rangers). Boats and small
# patrol drones top out around 50-70 km/h and 100-140 km/h.
_PLAUSIBLE_SPEED_MPS = {
    PatrolMode.FOOT: 15 / 3.6,
    PatrolMode.VEHICLE: 120 / 3.6,
    PatrolMode.BOAT: 55 / 3.6,
    PatrolMode.DRONE: 70 / 3.6,
}
_IMPOSSIBLE_SPEED_MPS = {
    PatrolMode.FOOT: 12.0,
    PatrolMode.VEHICLE: 70.0,
    PatrolMode.BOAT: 30.0,
    PatrolMode.DRONE: 40.0,
}


class PointFlag(enum.StrEnum):
    JUNK = "JUNK"
    LOW_ACCURACY = "LOW_ACCURACY"
    MOCK = "MOCK"
    DUPLICATE_TIME = "DUPLICATE_TIME"
    SPIKE = "SPIKE"


class AuthenticityFlag(enum.StrEnum):
    TOO_FAST = "TOO_FAST"
    TOO_STRAIGHT = "TOO_STRAIGHT"
    TOO_REGULAR = "TOO_REGULAR"
    LONG_GAPS = "LONG_GAPS"
    MOCK_LOCATION = "MOCK_LOCATION"
    SPEED_SPIKES = "SPEED_SPIKES"
    CLOCK_SKEW = "CLOCK_SKEW"
    LATE_UPLOAD = "LATE_UPLOAD"  # set by the service: points arrived long after the patrol finished


@dataclass(frozen=True, slots=True)
class TrackConfig:
    max_accuracy_m: float = 50.0
    # A spike must also jump this far both ways: 1 Hz fixes jitter by metres, which is not a teleport.
    spike_min_jump_m: float = 25.0
    # Steps shorter than this from the last kept point are GNSS jitter, not movement (ER's stationary
    # radius); without it a phone lying still for an hour at 1 Hz "walks" kilometres.
    jitter_radius_m: float = 5.0
    # Positions are averaged over this window before measuring, so independent 1 Hz noise averages out
    # instead of adding up; sparse tracks (one fix per 15 s) are left as they are.
    smooth_window_s: float = 10.0
    stop_speed_mps: float = 0.3  # about 1 km/h, gpxpy's default for "stopped"
    gap_s: float = 120.0  # no fix for longer: the time is not counted as moving
    long_gap_s: float = 600.0  # no fix for longer: reported as a suspicious gap
    # Straightness and regularity are measured only over moving stretches at least this long, so a
    # short first batch, a chord across missing data or a stop cannot decide them.
    stretch_min_m: float = 1000.0
    straight_ratio: float = 0.98
    regular_min_steps: int = 30
    regular_max_variation: float = 0.02  # coefficient of variation of both intervals and step speeds
    clock_tolerance_s: float = 120.0


@dataclass(frozen=True, slots=True)
class PointIssue:
    seq: int
    flag: PointFlag
    reason: str


@dataclass(frozen=True, slots=True)
class Straightness:
    """Straight-line distance over path length, weighted by length over the measured stretches."""

    value: float | None  # None: no moving stretch was long enough to measure
    measured_m: float
    stretches: int
    points: int


@dataclass(frozen=True, slots=True)
class Regularity:
    """Coefficients of variation of the fix intervals and step speeds inside the measured stretches."""

    interval_variation: float | None  # None: too few steps in long enough moving stretches
    speed_variation: float | None
    measured_m: float
    stretches: int
    points: int


_UNMEASURED_STRAIGHTNESS = Straightness(None, 0.0, 0, 0)
_UNMEASURED_REGULARITY = Regularity(None, None, 0.0, 0, 0)


@dataclass(frozen=True, slots=True)
class TrackMetrics:
    valid_points: int
    duration_s: float  # first to last valid fix; moving + pause + gap time add up to it
    moving_time_s: float
    distance_m: float  # used distance: smoothed, then thinned to the jitter radius
    max_gap_s: float  # longest interval between fixes outside recorded pauses
    raw_distance_m: float = 0.0  # plain sum of the steps between valid fixes
    pause_time_s: float = 0.0  # standing still or in a recorded pause
    gap_time_s: float = 0.0  # no fixes for longer than `gap_s`, outside recorded pauses
    straightness: Straightness = _UNMEASURED_STRAIGHTNESS
    regularity: Regularity = _UNMEASURED_REGULARITY


@dataclass(frozen=True, slots=True)
class Finding:
    flag: AuthenticityFlag
    reason: str


@dataclass(frozen=True, slots=True)
class Authenticity:
    findings: tuple[Finding, ...]

    @property
    def suspicious(self) -> bool:
        return bool(self.findings)

    @property
    def reasons(self) -> list[str]:
        return [f.reason for f in self.findings]


@dataclass(frozen=True, slots=True)
class TrackAnalysis:
    points: tuple[TrackPoint, ...]  # sorted by device time, then seq
    issues: tuple[PointIssue, ...]
    metrics: TrackMetrics
    authenticity: Authenticity
    valid: np.ndarray = field(repr=False)  # bool mask over `points`

    @property
    def valid_points(self) -> list[TrackPoint]:
        return [p for p, ok in zip(self.points, self.valid, strict=True) if ok]


@dataclass(frozen=True, slots=True)
class _Arrays:
    t: np.ndarray  # epoch seconds
    lat: np.ndarray
    lon: np.ndarray
    accuracy: np.ndarray  # NaN where unknown
    mock: np.ndarray


def _sorted_arrays(points: Sequence[TrackPoint]) -> tuple[tuple[TrackPoint, ...], _Arrays]:
    seq = np.fromiter((p.seq for p in points), dtype=np.int64, count=len(points))
    t = np.fromiter((p.t.timestamp() for p in points), dtype=float, count=len(points))
    order = np.lexsort((seq, t))  # devices upload batches out of order
    ordered = tuple(points[i] for i in order)
    lat = np.fromiter((p.lat for p in ordered), dtype=float, count=len(ordered))
    lon = np.fromiter((p.lon for p in ordered), dtype=float, count=len(ordered))
    acc = np.fromiter(
        (math.nan if p.accuracy_m is None else p.accuracy_m for p in ordered), dtype=float, count=len(ordered)
    )
    mock = np.fromiter((p.mock for p in ordered), dtype=bool, count=len(ordered))
    return ordered, _Arrays(t[order], lat, lon, acc, mock)


def _junk_mask(a: _Arrays) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        out_of_range = ~(
            np.isfinite(a.lat) & np.isfinite(a.lon) & (np.abs(a.lat) <= 90) & (np.abs(a.lon) <= 180)
        )
    null_island = (a.lat == 0.0) & (a.lon == 0.0)  # the "no fix" default of many devices
    return out_of_range | null_island


def _duplicate_time_mask(t: np.ndarray, eligible: np.ndarray) -> np.ndarray:
    # Among eligible points (already time-sorted) the first of equal timestamps is kept.
    idx = np.flatnonzero(eligible)
    dup = np.zeros(t.size, dtype=bool)
    dup[idx[1:][np.diff(t[idx]) == 0]] = True
    return dup


def _spike_mask(a: _Arrays, eligible: np.ndarray, mode: PatrolMode, cfg: TrackConfig) -> np.ndarray:
    """A fix whose speed both in and out is impossible: a single bad fix, not the points around it."""
    idx = np.flatnonzero(eligible)
    spike = np.zeros(a.t.size, dtype=bool)
    if idx.size < 3:
        return spike
    d = step_lengths_m(a.lat[idx], a.lon[idx])
    v = d / np.diff(a.t[idx])  # eligible points have distinct times
    fast = (v > mode.impossible_speed_mps) & (d > cfg.spike_min_jump_m)
    spike[idx[1:-1][fast[:-1] & fast[1:]]] = True
    return spike


def _issues(
    ordered: Sequence[TrackPoint],
    masks: dict[PointFlag, np.ndarray],
    cfg: TrackConfig,
    mode: PatrolMode,
) -> list[PointIssue]:
    reasons = {
        PointFlag.JUNK: lambda p: f"coordinates ({p.lat}, {p.lon}) are not a real fix",
        PointFlag.LOW_ACCURACY: lambda p: f"accuracy {p.accuracy_m:g} m > {cfg.max_accuracy_m:g} m allowed",
        PointFlag.MOCK: lambda p: "reported by a mock location provider",
        PointFlag.DUPLICATE_TIME: lambda p: f"same device time as an earlier point ({p.t.isoformat()})",
        PointFlag.SPIKE: lambda p: (
            f"jump in and out faster than {mode.impossible_speed_mps * 3.6:g} km/h ({mode.value.lower()})"
        ),
    }
    issues: list[PointIssue] = []
    for flag, mask in masks.items():
        issues.extend(
            PointIssue(ordered[i].seq, flag, reasons[flag](ordered[i])) for i in np.flatnonzero(mask).tolist()
        )
    return issues


def _flag(
    ordered: Sequence[TrackPoint], a: _Arrays, mode: PatrolMode, cfg: TrackConfig
) -> tuple[list[PointIssue], np.ndarray]:
    junk = _junk_mask(a)
    with np.errstate(invalid="ignore"):
        low_accuracy = ~junk & (a.accuracy > cfg.max_accuracy_m)
    mock = ~junk & a.mock
    duplicate = _duplicate_time_mask(a.t, ~junk)
    spike = _spike_mask(a, ~(junk | low_accuracy | mock | duplicate), mode, cfg)
    masks = {
        PointFlag.JUNK: junk,
        PointFlag.LOW_ACCURACY: low_accuracy,
        PointFlag.MOCK: mock,
        PointFlag.DUPLICATE_TIME: duplicate,
        PointFlag.SPIKE: spike,
    }
    valid = ~(junk | low_accuracy | mock | duplicate | spike)
    return _issues(ordered, masks, cfg, mode), valid


def _smooth(
    t: np.ndarray, lat: np.ndarray, lon: np.ndarray, window_s: float
) -> tuple[np.ndarray, np.ndarray]:
    """Time-window mean of positions, taken on unit vectors so it holds across the antimeridian and poles."""
    phi, lam = np.radians(lat), np.radians(lon)
    xyz = np.column_stack([np.cos(phi) * np.cos(lam), np.cos(phi) * np.sin(lam), np.sin(phi)])
    sums = np.vstack([np.zeros(3), np.cumsum(xyz, axis=0)])
    # Symmetric windows, narrowed at the ends, so steady movement is not pulled in at its start and end.
    half = np.minimum(window_s / 2.0, np.minimum(t - t[0], t[-1] - t))
    lo = np.searchsorted(t, t - half, side="left")
    hi = np.searchsorted(t, t + half, side="right")
    mean = sums[hi] - sums[lo]
    mean /= np.linalg.norm(mean, axis=1)[:, None]
    smooth_lat = np.degrees(np.arcsin(np.clip(mean[:, 2], -1.0, 1.0)))
    smooth_lon = np.degrees(np.arctan2(mean[:, 1], mean[:, 0]))
    return smooth_lat, smooth_lon


def _thin(lat: np.ndarray, lon: np.ndarray, radius_m: float) -> np.ndarray:
    """Indices of points that moved beyond `radius_m` from the last kept point, always with the first and
    last point (so at least two for two or more points)."""
    kept = [0]
    last_lat, last_lon = float(lat[0]), float(lon[0])
    for i, (la, lo) in enumerate(zip(lat.tolist(), lon.tolist(), strict=True)):
        if haversine_m(last_lat, last_lon, la, lo) >= radius_m:
            kept.append(i)
            last_lat, last_lon = la, lo
    if kept[-1] != lat.size - 1:
        kept.append(lat.size - 1)
    return np.asarray(kept)


@dataclass(frozen=True, slots=True)
class _Steps:
    raw_d: np.ndarray  # between consecutive valid fixes, as recorded
    raw_dt: np.ndarray
    unpaused_dt: np.ndarray  # raw_dt less the recorded pauses inside it
    kept: np.ndarray  # indices of the valid fixes kept by thinning
    kept_lat: np.ndarray  # smoothed positions of the kept fixes
    kept_lon: np.ndarray
    thinned_d: np.ndarray  # between kept fixes
    thinned_unpaused_dt: np.ndarray
    moving: np.ndarray  # per thinned step


def _paused_before(pauses: Sequence[tuple[float, float]], t: np.ndarray) -> np.ndarray:
    """Seconds of recorded pause before each time in `t`; pauses are (start, end) epoch seconds."""
    merged: list[list[float]] = []
    for begin, stop in sorted(pauses):
        if merged and begin <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], stop)
        elif stop > begin:
            merged.append([begin, stop])
    if not merged:
        return np.zeros(t.size)
    edges = np.asarray(merged).ravel()
    lengths = np.diff(edges)
    lengths[1::2] = 0.0  # the time between two pauses is not paused
    return np.interp(t, edges, np.concatenate([[0.0], np.cumsum(lengths)]))


def _steps(t: np.ndarray, lat: np.ndarray, lon: np.ndarray, paused: np.ndarray, cfg: TrackConfig) -> _Steps:
    raw_dt = np.diff(t)
    smooth_lat, smooth_lon = _smooth(t, lat, lon, cfg.smooth_window_s)
    kept = _thin(smooth_lat, smooth_lon, cfg.jitter_radius_m)
    d = step_lengths_m(smooth_lat[kept], smooth_lon[kept])
    dt = np.diff(t[kept])
    # A thinned step hides the raw steps inside it; if any of them is a data gap, the step is not
    # evidence of movement even when its average speed looks fine.
    gap_inside = np.maximum.reduceat(raw_dt, kept[:-1]) > cfg.gap_s
    with np.errstate(divide="ignore", invalid="ignore"):
        moving = (d / dt >= cfg.stop_speed_mps) & ~gap_inside
    return _Steps(
        raw_d=step_lengths_m(lat, lon),
        raw_dt=raw_dt,
        unpaused_dt=raw_dt - np.diff(paused),
        kept=kept,
        kept_lat=smooth_lat[kept],
        kept_lon=smooth_lon[kept],
        thinned_d=d,
        thinned_unpaused_dt=dt - np.diff(paused[kept]),
        moving=moving,
    )


def _stretches(steps: _Steps, cfg: TrackConfig) -> list[tuple[int, int]]:
    """Runs [a, b) of consecutive moving thinned steps at least `stretch_min_m` long: stops, gaps and
    recorded pauses end a stretch, so the chord across missing data never counts as walked."""
    edges = np.diff(np.concatenate([[0], steps.moving.astype(np.int8), [0]]))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    along = np.concatenate([[0.0], np.cumsum(steps.thinned_d)])
    return [
        (a, b)
        for a, b in zip(starts.tolist(), ends.tolist(), strict=True)
        if along[b] - along[a] >= cfg.stretch_min_m
    ]


def _straightness(steps: _Steps, stretches: list[tuple[int, int]]) -> Straightness:
    if not stretches:
        return _UNMEASURED_STRAIGHTNESS
    ends = np.asarray(stretches).ravel()
    # On the ellipsoid, like the path: a spherical chord would read a ruler line as 0.998 straight.
    chord = float(step_lengths_m(steps.kept_lat[ends], steps.kept_lon[ends])[::2].sum())
    path = sum(float(steps.thinned_d[a:b].sum()) for a, b in stretches)
    points = sum(int(steps.kept[b] - steps.kept[a]) + 1 for a, b in stretches)
    return Straightness(chord / path, path, len(stretches), points)


def _regularity(steps: _Steps, stretches: list[tuple[int, int]], cfg: TrackConfig) -> Regularity:
    raw = [np.arange(steps.kept[a], steps.kept[b]) for a, b in stretches]
    idx = np.concatenate(raw) if raw else np.zeros(0, dtype=np.int64)
    if idx.size < cfg.regular_min_steps:
        return _UNMEASURED_REGULARITY
    return Regularity(
        interval_variation=_variation(steps.raw_dt[idx]),
        speed_variation=_variation(steps.raw_d[idx] / steps.raw_dt[idx]),
        measured_m=sum(float(steps.thinned_d[a:b].sum()) for a, b in stretches),
        stretches=len(stretches),
        points=int(idx.size) + len(stretches),
    )


def _metrics(t: np.ndarray, steps: _Steps | None, cfg: TrackConfig) -> TrackMetrics:
    if steps is None:
        return TrackMetrics(int(t.size), 0.0, 0.0, 0.0, 0.0)
    duration = float(t[-1] - t[0])
    # A moving thinned step has no gap inside, so moving and gap time never overlap; what is left of
    # the duration is time spent standing still or in a recorded pause.
    moving = float(steps.thinned_unpaused_dt[steps.moving].sum())
    gap = float(steps.unpaused_dt[steps.unpaused_dt > cfg.gap_s].sum())
    stretches = _stretches(steps, cfg)
    return TrackMetrics(
        valid_points=int(t.size),
        duration_s=duration,
        moving_time_s=moving,
        distance_m=float(steps.thinned_d.sum()),
        max_gap_s=float(steps.unpaused_dt.max()),
        raw_distance_m=float(steps.raw_d.sum()),
        pause_time_s=max(0.0, duration - moving - gap),
        gap_time_s=gap,
        straightness=_straightness(steps, stretches),
        regularity=_regularity(steps, stretches, cfg),
    )


def _variation(values: np.ndarray) -> float:
    mean = float(np.mean(values))
    return float(np.std(values)) / mean if mean > 0 else math.inf


def _count(n: int, noun: str) -> str:
    if n == 1:
        return f"{n} {noun}"
    return f"{n} {noun}es" if noun.endswith("ch") else f"{n} {noun}s"


def _minutes(seconds: float) -> str:
    minutes = round(seconds / 60)
    return f"{minutes // 60} h {minutes % 60} min" if minutes >= 60 else f"{minutes} min"


def _authenticity(
    a: _Arrays,
    issues: Sequence[PointIssue],
    metrics: TrackMetrics,
    steps: _Steps | None,
    mode: PatrolMode,
    cfg: TrackConfig,
    clock: tuple[datetime | None, datetime | None],
) -> Authenticity:
    findings: list[Finding] = []
    counts = {flag: 0 for flag in PointFlag}
    for issue in issues:
        counts[issue.flag] += 1
    if counts[PointFlag.MOCK]:
        findings.append(
            Finding(
                AuthenticityFlag.MOCK_LOCATION,
                f"{_count(counts[PointFlag.MOCK], 'point')} came from a mock location provider",
            )
        )
    if counts[PointFlag.SPIKE]:
        findings.append(
            Finding(
                AuthenticityFlag.SPEED_SPIKES,
                f"{_count(counts[PointFlag.SPIKE], 'impossible jump')} for {mode.value.lower()}",
            )
        )
    if steps is not None:
        findings.extend(_movement_findings(metrics, steps, mode, cfg))
    findings.extend(_clock_findings(a, *clock, cfg))
    return Authenticity(tuple(findings))


def _movement_findings(
    metrics: TrackMetrics, steps: _Steps, mode: PatrolMode, cfg: TrackConfig
) -> list[Finding]:
    candidates = [
        _too_fast(metrics, mode),
        _too_straight(metrics.straightness, cfg),
        _too_regular(metrics.regularity, cfg),
        _long_gaps(steps, cfg),
    ]
    return [f for f in candidates if f is not None]


def _too_fast(metrics: TrackMetrics, mode: PatrolMode) -> Finding | None:
    if metrics.moving_time_s <= 0:
        return None
    speed = metrics.distance_m / metrics.moving_time_s
    if speed <= mode.plausible_speed_mps:
        return None
    return Finding(
        AuthenticityFlag.TOO_FAST,
        f"average moving speed {speed * 3.6:.1f} km/h > "
        f"{mode.plausible_speed_mps * 3.6:.0f} km/h plausible for {mode.value.lower()}",
    )


def _measured(measured_m: float, stretches: int) -> str:
    return f"over {measured_m / 1000:.1f} km of moving track in {_count(stretches, 'stretch')}"


def _too_straight(straightness: Straightness, cfg: TrackConfig) -> Finding | None:
    if straightness.value is None or straightness.value < cfg.straight_ratio:
        return None
    return Finding(
        AuthenticityFlag.TOO_STRAIGHT,
        f"track is almost a straight line (straightness {straightness.value:.3f} "
        f"{_measured(straightness.measured_m, straightness.stretches)})",
    )


def _too_regular(regularity: Regularity, cfg: TrackConfig) -> Finding | None:
    # Real receivers sample at steady intervals, but walking speed measured between noisy fixes never
    # stays constant; both constant together is the signature of a generated track.
    intervals, speeds = regularity.interval_variation, regularity.speed_variation
    if intervals is None or speeds is None:
        return None
    if intervals >= cfg.regular_max_variation or speeds >= cfg.regular_max_variation:
        return None
    return Finding(
        AuthenticityFlag.TOO_REGULAR,
        f"intervals and speeds are near-constant (variation {intervals:.3f} and {speeds:.3f} "
        f"{_measured(regularity.measured_m, regularity.stretches)}), typical of a simulated track",
    )


def _long_gaps(steps: _Steps, cfg: TrackConfig) -> Finding | None:
    # Time inside a recorded pause is not missing data, even when the phone recorded nothing.
    long_gaps = steps.unpaused_dt[steps.unpaused_dt > cfg.long_gap_s]
    if not long_gaps.size:
        return None
    return Finding(
        AuthenticityFlag.LONG_GAPS,
        f"{_count(long_gaps.size, 'gap')} without fixes longer than {_minutes(cfg.long_gap_s)} "
        f"(longest {_minutes(float(long_gaps.max()))})",
    )


def _clock_findings(
    a: _Arrays, received_at: datetime | None, device_sent_at: datetime | None, cfg: TrackConfig
) -> list[Finding]:
    """Device clock vs server clock.

    With `device_sent_at` (the device's clock when it sent the upload) the skew is measured directly.
    With only `received_at`, a fix dated after its receipt proves the device clock runs ahead; a clock
    running behind cannot be told apart from offline buffering without the send time.
    """
    if received_at is None:
        return []
    if device_sent_at is not None:
        skew = (received_at - device_sent_at).total_seconds()
    elif a.t.size:
        skew = received_at.timestamp() - float(a.t.max())
        skew = min(skew, 0.0)
    else:
        return []
    if abs(skew) <= cfg.clock_tolerance_s:
        return []
    direction = "ahead of" if skew < 0 else "behind"
    return [
        Finding(
            AuthenticityFlag.CLOCK_SKEW, f"device clock is {_minutes(abs(skew))} {direction} the server clock"
        )
    ]


def analyse_track(
    points: Sequence[TrackPoint],
    mode: PatrolMode = PatrolMode.FOOT,
    *,
    config: TrackConfig = TrackConfig(),
    received_at: datetime | None = None,
    device_sent_at: datetime | None = None,
    pauses: Sequence[tuple[datetime, datetime | None]] = (),
) -> TrackAnalysis:
    """Flag doubtful points, compute metrics over the valid ones and assess authenticity.

    Points are sorted by device time, then seq. Spikes are detected only at interior points, so a bad
    first or last fix is not flagged as a spike. Mock, junk, low-accuracy, duplicate-time and spike
    points are all left out of the metrics. `pauses` are the chief's recorded pauses (an open one lasts
    to the last fix): their time is pause time, never moving time or a gap.
    """
    ordered, a = _sorted_arrays(points)
    issues, valid = _flag(ordered, a, mode, config)
    t, lat, lon = a.t[valid], a.lat[valid], a.lon[valid]
    steps = None
    if t.size >= 2:
        last = float(t[-1])
        spans = [(b.timestamp(), last if e is None else e.timestamp()) for b, e in pauses]
        steps = _steps(t, lat, lon, _paused_before(spans, t), config)
    metrics = _metrics(t, steps, config)
    authenticity = _authenticity(a, issues, metrics, steps, mode, config, (received_at, device_sent_at))
    return TrackAnalysis(ordered, tuple(issues), metrics, authenticity, valid)


# --- coverage -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LineCoverage:
    ratio: float
    covered_m: float
    length_m: float
    # Covered stretches as (from, to) fractions along the line (parts concatenated in order), so the
    # UI can show uncovered stretches and several patrols can be united per period.
    intervals: tuple[tuple[float, float], ...]


@dataclass(frozen=True, slots=True)
class AreaCoverage:
    boundary_ratio: float
    area_ratio: float
    boundary_m: float
    area_m2: float


def _as_geometry(geometry: BaseGeometry | dict) -> BaseGeometry:
    return shapely.geometry.shape(geometry) if isinstance(geometry, dict) else geometry


def _track_geometry(
    track: TrackAnalysis | Sequence[TrackPoint], plane: LocalPlane, tolerance_m: float
) -> BaseGeometry | None:
    pts = track.valid_points if isinstance(track, TrackAnalysis) else list(track)
    if not pts:
        return None
    lon = np.fromiter((p.lon for p in pts), dtype=float, count=len(pts))
    lat = np.fromiter((p.lat for p in pts), dtype=float, count=len(pts))
    x, y = plane.forward(lon, lat)
    if len(pts) == 1:
        return shapely.points(x[0], y[0])
    # Simplifying within a small fraction of the buffer changes the covered length by at most that
    # tolerance but makes the distance test and buffering many times cheaper.
    return shapely.simplify(shapely.linestrings(x, y), tolerance_m)


def _sample_along(line: BaseGeometry, spacing_m: float) -> tuple[np.ndarray, float]:
    """Points at the midpoints of equal pieces no longer than `spacing_m`, and the line's length."""
    length = float(line.length)
    pieces = max(1, math.ceil(length / spacing_m))
    distances = (np.arange(pieces) + 0.5) * (length / pieces)
    return shapely.line_interpolate_point(line, distances), length


def _covered_runs(covered: np.ndarray) -> tuple[tuple[float, float], ...]:
    if not covered.any():
        return ()
    edges = np.diff(np.concatenate([[0], covered.astype(np.int8), [0]]))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    n = covered.size
    return tuple((float(s / n), float(e / n)) for s, e in zip(starts, ends, strict=True))


def _line_parts(geometry: BaseGeometry) -> list[BaseGeometry]:
    return list(
        shapely.get_parts(
            shapely.line_merge(geometry) if geometry.geom_type == "MultiLineString" else geometry
        )
    )


def _share_within(
    lines: BaseGeometry, track: BaseGeometry | None, distance_m: float, spacing_m: float
) -> tuple[np.ndarray, float]:
    samples, total = [], 0.0
    for part in _line_parts(lines):
        pts, length = _sample_along(part, spacing_m)
        samples.append(pts)
        total += length
    pts = np.concatenate(samples) if samples else np.zeros(0, dtype=object)
    if track is None or pts.size == 0:
        return np.zeros(pts.size, dtype=bool), total
    shapely.prepare(track)
    return shapely.dwithin(track, pts, distance_m), total


def line_coverage(
    track: TrackAnalysis | Sequence[TrackPoint], segment: BaseGeometry | dict, buffer_m: float = 50.0
) -> LineCoverage:
    """Share of a river segment (lon/lat (Multi)LineString) lying within `buffer_m` of the track.

    The segment is sampled every buffer/10 metres (at least 1,000 samples) in a local metric plane, and
    each sample is tested against the track: the error is at most one sample spacing per coverage edge.
    """
    segment = _as_geometry(segment)
    plane = LocalPlane.around(segment)
    planar = plane.project(segment)
    spacing = min(buffer_m / 10.0, max(planar.length, 1.0) / 1000.0)
    covered, length = _share_within(planar, _track_geometry(track, plane, buffer_m / 20.0), buffer_m, spacing)
    ratio = float(covered.mean()) if covered.size else 0.0
    return LineCoverage(ratio, ratio * length, length, _covered_runs(covered))


def area_coverage(
    track: TrackAnalysis | Sequence[TrackPoint],
    area: BaseGeometry | dict,
    swath_m: float = 100.0,
    boundary_buffer_m: float = 50.0,
) -> AreaCoverage:
    """For a lake or forest (lon/lat (Multi)Polygon): the share of its boundary within
    `boundary_buffer_m` of the track, and the share of its area inside the swath (track buffered by
    half of `swath_m` on each side)."""
    area = _as_geometry(area)
    plane = LocalPlane.around(area)
    planar = plane.project(area)
    boundary = planar.boundary
    spacing = min(boundary_buffer_m / 10.0, max(boundary.length, 1.0) / 1000.0)
    track_geom = _track_geometry(track, plane, min(boundary_buffer_m, swath_m / 2.0) / 20.0)
    covered, boundary_m = _share_within(boundary, track_geom, boundary_buffer_m, spacing)
    area_m2 = float(planar.area)
    reached = 0.0
    if track_geom is not None and area_m2 > 0:
        reached = float(shapely.intersection(shapely.buffer(track_geom, swath_m / 2.0), planar).area)
    return AreaCoverage(
        boundary_ratio=float(covered.mean()) if covered.size else 0.0,
        area_ratio=reached / area_m2 if area_m2 > 0 else 0.0,
        boundary_m=boundary_m,
        area_m2=area_m2,
    )
