"""Benchmark: finishing a patrol (flags + metrics + coverage) and a county's compliance check.

    python bench/patrol_metrics.py           # 3-hour 1 Hz track (10,800 points), 500 chiefs x 1 quarter
    python bench/patrol_metrics.py --quick   # tiny sizes, a CI smoke run

Targets (issue): finishing a patrol <= 300 ms; compliance for a county <= 500 ms. Each figure is the
median of several rounds in one process, because this machine's timings move by up to 25 % between runs.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import shapely

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kernel.geo import geodesic_length_m
from patrols.rules import ChiefKind, ChiefLevel, PatrolRule, PatrolSummary, Period, evaluate
from patrols.track import TrackPoint, analyse_track, line_coverage

LAT0, LON0 = 30.25, 120.15  # Hangzhou
M_PER_DEG_LAT = 110_852.0
M_PER_DEG_LON = 111_320.0 * math.cos(math.radians(LAT0))


@dataclass(frozen=True)
class Sizes:
    track_points: int
    river_km: float
    chiefs: int
    patrols_per_chief: int
    rounds: int


FULL = Sizes(track_points=10_800, river_km=10.0, chiefs=500, patrols_per_chief=20, rounds=9)
QUICK = Sizes(track_points=600, river_km=1.0, chiefs=20, patrols_per_chief=5, rounds=3)


def river_line(km: float) -> shapely.LineString:
    """A meandering river of about `km` kilometres heading east."""
    east = np.linspace(0.0, km * 880.0, 500)
    north = 0.25 * km * 880.0 / 4 * np.sin(east / (km * 880.0) * 4 * math.pi)
    return shapely.LineString(np.column_stack([LON0 + east / M_PER_DEG_LON, LAT0 + north / M_PER_DEG_LAT]))


def noisy_walk(river: shapely.LineString, n: int, rng: np.random.Generator) -> list[TrackPoint]:
    """One fix per second along the river bank, with correlated GNSS noise, a few spikes, shuffled."""
    coords = shapely.get_coordinates(river)
    along = np.linspace(0.0, 1.0, n)
    index = along * (len(coords) - 1)
    lon = np.interp(index, np.arange(len(coords)), coords[:, 0])
    lat = np.interp(index, np.arange(len(coords)), coords[:, 1])
    noise = np.zeros((n, 2))
    for i in range(1, n):  # AR(1): real receiver error drifts rather than jumping independently
        noise[i] = 0.95 * noise[i - 1] + rng.normal(0.0, 1.0, 2)
    lat = lat + (noise[:, 1] + 15.0) / M_PER_DEG_LAT  # walking 15 m off the centre line
    lon = lon + noise[:, 0] / M_PER_DEG_LON
    t0 = datetime(2024, 5, 1, 0, 0, tzinfo=UTC)
    points = [
        TrackPoint(i, t0 + timedelta(seconds=i), float(lat[i]), float(lon[i]), float(rng.uniform(3, 12)))
        for i in range(n)
    ]
    for i in rng.choice(np.arange(1, n - 1), size=max(1, n // 2000), replace=False):
        p = points[i]
        points[i] = TrackPoint(p.seq, p.t, p.lat + 0.01, p.lon, p.accuracy_m)
    order = rng.permutation(n)
    return [points[i] for i in order]


def county_patrols(chiefs: int, per_chief: int, rng: np.random.Generator) -> list[list[PatrolSummary]]:
    start = datetime(2024, 3, 31, 16, 0, tzinfo=UTC)  # 1 April 00:00 in Beijing
    out = []
    for c in range(chiefs):
        offsets = np.sort(rng.uniform(0, 90 * 24, per_chief))
        out.append(
            [
                PatrolSummary(
                    f"p{c}-{k}",
                    f"chief-{c}",
                    f"area-{c}",
                    start + timedelta(hours=float(h)),
                    start + timedelta(hours=float(h), minutes=float(rng.uniform(10, 90))),
                    float(rng.uniform(500, 5000)),
                    float(rng.uniform(0.2, 1.0)),
                )
                for k, h in enumerate(offsets)
            ]
        )
    return out


def median_ms(fn: Callable[[], object], rounds: int) -> float:
    fn()  # warm caches and imports outside the measurement
    timings = []
    for _ in range(rounds):
        began = time.perf_counter()
        fn()
        timings.append((time.perf_counter() - began) * 1000.0)
    return statistics.median(timings)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes for a CI smoke run")
    sizes = QUICK if parser.parse_args().quick else FULL
    rng = np.random.default_rng(20240501)

    river = river_line(sizes.river_km)
    points = noisy_walk(river, sizes.track_points, rng)

    def finish_patrol() -> tuple:
        analysis = analyse_track(points)
        return analysis, line_coverage(analysis, river, buffer_m=50.0)

    analysis, coverage = finish_patrol()
    finish = median_ms(finish_patrol, sizes.rounds)
    river_m = geodesic_length_m(shapely.get_coordinates(river).tolist())
    print(f"track: {sizes.track_points} points along a {river_m / 1000:.2f} km river")
    metrics = analysis.metrics
    print(
        f"  valid {metrics.valid_points}, flagged {len(analysis.issues)}, "
        f"distance {metrics.distance_m / 1000:.2f} km, moving {metrics.moving_time_s / 60:.0f} min, "
        f"coverage {coverage.ratio:.3f}"
    )
    print(
        f"  flags + metrics + coverage: median {finish:.1f} ms over {sizes.rounds} rounds (target <= 300 ms)"
    )

    rule = PatrolRule(
        "BENCH-VILLAGE-WEEKLY", "bench", "330100", ChiefLevel.VILLAGE, ChiefKind.RIVER, Period.WEEK, 1,
        min_duration_min=30, min_distance_km=1, min_coverage=0.5, min_gap_hours=24,
    )  # fmt: skip
    county = county_patrols(sizes.chiefs, sizes.patrols_per_chief, rng)

    def check_county() -> list:
        return [evaluate(rule, patrols, date(2024, 4, 1), date(2024, 6, 30)) for patrols in county]

    verdicts = check_county()
    compliance = median_ms(check_county, sizes.rounds)
    met = sum(v.met for v in verdicts)
    print(f"compliance: {sizes.chiefs} chiefs x {sizes.patrols_per_chief} patrols, one quarter, weekly rule")
    print(f"  {met} met it; median {compliance:.1f} ms over {sizes.rounds} rounds (target <= 500 ms)")


if __name__ == "__main__":
    main()
