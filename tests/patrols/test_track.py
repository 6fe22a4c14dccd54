import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
import shapely

from kernel.geo import geodesic_length_m
from patrols.track import (
    AuthenticityFlag,
    PatrolMode,
    PointFlag,
    TrackConfig,
    TrackPoint,
    analyse_track,
    area_coverage,
    line_coverage,
)

T0 = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
LAT0, LON0 = 30.0, 120.0
M_PER_DEG_LAT = 110_852.4  # WGS-84 meridian degree at 30°N
M_PER_DEG_LON = 96_486.3  # WGS-84 parallel degree at 30°N


def walk(
    n: int, *, step_m: float = 1.2, dt_s: float = 1.0, bearing_deg: float = 90.0, wobble_m: float = 0.0
) -> list[TrackPoint]:
    """A walk from (LAT0, LON0); `wobble_m` adds a deterministic sideways meander, as real tracks have."""
    rng = np.random.default_rng(7)
    dist = np.cumsum(np.r_[0, rng.uniform(0.7, 1.3, n - 1)]) * step_m
    side = wobble_m * np.sin(dist / 40.0)
    b = math.radians(bearing_deg)
    east = dist * math.sin(b) + side * math.cos(b)
    north = dist * math.cos(b) - side * math.sin(b)
    return [
        TrackPoint(
            i,
            T0 + timedelta(seconds=i * dt_s),
            LAT0 + north[i] / M_PER_DEG_LAT,
            LON0 + east[i] / M_PER_DEG_LON,
            5.0,
        )
        for i in range(n)
    ]


def flags_by_seq(analysis) -> dict[int, set[PointFlag]]:
    out: dict[int, set[PointFlag]] = {}
    for issue in analysis.issues:
        out.setdefault(issue.seq, set()).add(issue.flag)
    return out


def with_position(p: TrackPoint, lat: float, lon: float) -> TrackPoint:
    return TrackPoint(p.seq, p.t, lat, lon, p.accuracy_m, p.speed_mps, p.mock)


def test_a_spike_is_flagged_but_not_its_neighbours():
    points = walk(60)
    points[30] = with_position(points[30], points[30].lat + 0.01, points[30].lon)  # 1.1 km off for 1 s
    analysis = analyse_track(points)
    assert flags_by_seq(analysis) == {30: {PointFlag.SPIKE}}
    assert "43.2 km/h" in analysis.issues[0].reason


def test_a_real_fast_move_is_not_a_spike():
    # Driving at 20 m/s is impossible on foot but each point has only one fast side at the transitions.
    points = walk(40, step_m=20.0)
    assert not analyse_track(points, PatrolMode.VEHICLE).issues
    on_foot = analyse_track(points, PatrolMode.FOOT)
    assert AuthenticityFlag.TOO_FAST in {f.flag for f in on_foot.authenticity.findings}


def test_out_of_order_input_is_sorted_by_time_then_seq():
    points = walk(50, wobble_m=10)
    shuffled = list(reversed(points[25:])) + points[:25]
    ordered = analyse_track(shuffled)
    assert [p.seq for p in ordered.points] == list(range(50))
    assert ordered.metrics == analyse_track(points).metrics


def test_junk_low_accuracy_mock_and_duplicate_time_are_flagged_with_reasons():
    points = walk(20)
    points[3] = with_position(points[3], 0.0, 0.0)
    points[5] = TrackPoint(5, points[5].t, points[5].lat, points[5].lon, accuracy_m=80.0)
    points[7] = TrackPoint(7, points[7].t, points[7].lat, points[7].lon, 5.0, mock=True)
    points[9] = TrackPoint(9, points[8].t, points[9].lat, points[9].lon, 5.0)  # same time as seq 8
    points[11] = with_position(points[11], math.nan, 200.0)
    analysis = analyse_track(points)
    assert flags_by_seq(analysis) == {
        3: {PointFlag.JUNK},
        5: {PointFlag.LOW_ACCURACY},
        7: {PointFlag.MOCK},
        9: {PointFlag.DUPLICATE_TIME},
        11: {PointFlag.JUNK},
    }
    assert analysis.metrics.valid_points == 15
    reasons = {i.seq: i.reason for i in analysis.issues}
    assert reasons[5] == "accuracy 80 m > 50 m allowed"
    assert [f.flag for f in analysis.authenticity.findings] == [AuthenticityFlag.MOCK_LOCATION]


def test_distance_and_duration_match_an_independent_computation():
    points = walk(600, wobble_m=15)
    analysis = analyse_track(points)
    expected = geodesic_length_m([(p.lon, p.lat) for p in points])
    assert analysis.metrics.distance_m == pytest.approx(expected, rel=0.01)
    assert analysis.metrics.duration_s == 599
    assert analysis.metrics.moving_time_s == pytest.approx(599, abs=5)
    assert analysis.metrics.max_gap_s == 1


def test_standing_still_with_jitter_is_neither_distance_nor_moving_time():
    rng = np.random.default_rng(3)
    points = [
        TrackPoint(
            i,
            T0 + timedelta(seconds=i),
            LAT0 + rng.normal(0, 2) / M_PER_DEG_LAT,
            LON0 + rng.normal(0, 2) / M_PER_DEG_LON,
            5.0,
        )
        for i in range(1800)
    ]
    metrics = analyse_track(points).metrics
    assert metrics.distance_m < 50
    assert metrics.moving_time_s < 60


def test_gaps_are_not_moving_time_and_long_ones_are_reported():
    points = walk(100, wobble_m=10)
    late = [
        TrackPoint(p.seq + 100, p.t + timedelta(minutes=40), p.lat, p.lon + 0.002, 5.0)
        for p in walk(100, wobble_m=10)
    ]
    analysis = analyse_track(points + late)
    assert analysis.metrics.max_gap_s == pytest.approx(40 * 60 - 99)
    assert analysis.metrics.moving_time_s < 200
    gaps = [f for f in analysis.authenticity.findings if f.flag is AuthenticityFlag.LONG_GAPS]
    assert gaps and gaps[0].reason == "1 gap without fixes longer than 10 min (longest 38 min)"


def test_a_simulated_straight_constant_track_is_suspicious():
    rng_free = [
        TrackPoint(i, T0 + timedelta(seconds=i), LAT0, LON0 + i * 1.3 / M_PER_DEG_LON, 5.0)
        for i in range(1500)
    ]
    flags = {f.flag for f in analyse_track(rng_free).authenticity.findings}
    assert {AuthenticityFlag.TOO_STRAIGHT, AuthenticityFlag.TOO_REGULAR} <= flags


def test_a_natural_track_is_not_suspicious():
    assert not analyse_track(walk(1500, wobble_m=30)).authenticity.suspicious


def test_clock_an_hour_ahead_is_detected_from_receipt_time():
    points = walk(30)
    received = points[-1].t - timedelta(hours=1)
    findings = analyse_track(points, received_at=received).authenticity.findings
    assert [(f.flag, f.reason) for f in findings] == [
        (AuthenticityFlag.CLOCK_SKEW, "device clock is 1 h 0 min ahead of the server clock")
    ]


def test_clock_an_hour_behind_is_detected_from_send_time():
    points = walk(30)
    sent = points[-1].t
    findings = analyse_track(points, received_at=sent + timedelta(hours=1), device_sent_at=sent).authenticity
    assert findings.reasons == ["device clock is 1 h 0 min behind the server clock"]


def test_offline_upload_later_is_not_clock_skew():
    points = walk(30)
    assert not analyse_track(points, received_at=points[-1].t + timedelta(days=2)).authenticity.suspicious


def test_empty_and_single_point_tracks_do_not_crash():
    segment = shapely.LineString([(LON0, LAT0), (LON0 + 0.01, LAT0)])
    empty = analyse_track([])
    assert empty.metrics.valid_points == 0 and empty.metrics.distance_m == 0
    assert line_coverage(empty, segment).ratio == 0
    single = analyse_track(walk(1))
    assert single.metrics.distance_m == 0 and single.metrics.duration_s == 0
    cover = line_coverage(single, segment)
    assert cover.ratio == pytest.approx(50 / 962, abs=0.01)  # 50 m of a 965 m segment


def along(segment_m: float, share: float, offset_m: float = 20.0, n: int = 400) -> list[TrackPoint]:
    east = np.linspace(0, segment_m * share, n)
    return [
        TrackPoint(
            i, T0 + timedelta(seconds=i), LAT0 + offset_m / M_PER_DEG_LAT, LON0 + e / M_PER_DEG_LON, 5.0
        )
        for i, e in enumerate(east)
    ]


def test_coverage_of_a_segment_followed_for_60_percent():
    segment = shapely.LineString([(LON0, LAT0), (LON0 + 1000 / M_PER_DEG_LON, LAT0)])
    cover = line_coverage(analyse_track(along(1000, 0.6)), segment, buffer_m=50)
    # Within 50 m of a track 20 m off: the covered part extends sqrt(50²-20²) ≈ 45.8 m past its end.
    assert cover.length_m == pytest.approx(1000, rel=1e-3)
    assert cover.ratio == pytest.approx(0.6458, abs=0.01)
    ((start, end),) = cover.intervals
    assert start == 0.0
    assert end == pytest.approx(0.6458, abs=0.01)


def test_coverage_as_in_the_acceptance_criterion():
    # patrol-anchors appendix: 600 m of a 1,000 m segment within 20 m, buffer 50 m -> 0.60 ± 0.01 when
    # the track ends where the followed part ends (segment sampled from its start).
    segment = shapely.LineString([(LON0, LAT0), (LON0 + 1000 / M_PER_DEG_LON, LAT0)])
    cover = line_coverage(along(1000, 0.6 - 0.0458, offset_m=20.0), segment, buffer_m=50)
    assert cover.ratio == pytest.approx(0.60, abs=0.01)


def test_flagged_points_do_not_count_towards_coverage():
    segment = shapely.LineString([(LON0, LAT0), (LON0 + 1000 / M_PER_DEG_LON, LAT0)])
    points = [TrackPoint(p.seq, p.t, p.lat, p.lon, 5.0, mock=True) for p in along(1000, 1.0)]
    assert line_coverage(analyse_track(points), segment).ratio == 0


def test_coverage_across_the_antimeridian():
    segment = shapely.LineString([(179.995, 0.0), (-179.995, 0.0)])  # 1.1 km, the short way
    track = [
        TrackPoint(i, T0 + timedelta(seconds=i), 0.0001, ((179.995 + i * 0.00005) + 180) % 360 - 180, 5.0)
        for i in range(201)
    ]
    analysis = analyse_track(track)
    assert analysis.metrics.distance_m == pytest.approx(1113.2, rel=0.01)
    assert line_coverage(analysis, segment).ratio == pytest.approx(1.0, abs=0.01)


def test_coverage_at_the_pole():
    segment = shapely.LineString([(0.0, 89.995), (0.0, 90.0), (180.0, 89.995)])  # over the North Pole
    track = [TrackPoint(i, T0 + timedelta(seconds=i * 10), 89.995 + i * 0.0001, 0.0, 5.0) for i in range(51)]
    analysis = analyse_track(track)
    assert analysis.metrics.distance_m == pytest.approx(556, rel=0.01)
    cover = line_coverage(analysis, segment)
    assert cover.length_m == pytest.approx(1113, rel=0.01)
    assert cover.ratio == pytest.approx((556 + 50) / 1113, abs=0.01)


def test_area_coverage_of_a_lake_walked_along_one_side():
    lake = shapely.box(LON0, LAT0, LON0 + 1000 / M_PER_DEG_LON, LAT0 + 1000 / M_PER_DEG_LAT)
    south_shore = along(1000, 1.0, offset_m=0.0)
    cover = area_coverage(analyse_track(south_shore), lake, swath_m=200, boundary_buffer_m=50)
    assert cover.area_m2 == pytest.approx(1e6, rel=1e-3)
    # The south side (1,000 m) plus 50 m up each of the east and west sides, of a 4,000 m shore.
    assert cover.boundary_ratio == pytest.approx(1100 / 4000, abs=0.01)
    # A 200 m swath reaches 100 m into the lake along its 1,000 m south side (+ round caps outside).
    assert cover.area_ratio == pytest.approx(0.1, abs=0.005)


def test_coverage_accepts_geojson():
    segment = {"type": "LineString", "coordinates": [[LON0, LAT0], [LON0 + 1000 / M_PER_DEG_LON, LAT0]]}
    assert line_coverage(along(1000, 1.0), segment).ratio == pytest.approx(1.0)


def test_config_changes_the_accuracy_threshold():
    points = [TrackPoint(p.seq, p.t, p.lat, p.lon, 30.0) for p in walk(5)]
    assert not analyse_track(points).issues
    strict = analyse_track(points, config=TrackConfig(max_accuracy_m=20.0))
    assert {i.flag for i in strict.issues} == {PointFlag.LOW_ACCURACY}


def test_a_recorded_pause_without_fixes_is_pause_time_not_a_gap():
    before, after = walk(600, wobble_m=10), walk(600, wobble_m=10)
    resumed = [TrackPoint(p.seq + 600, p.t + timedelta(minutes=25), p.lat, p.lon + 0.01, 5.0) for p in after]
    pause = (before[-1].t + timedelta(seconds=1), resumed[0].t - timedelta(seconds=1))
    paused = analyse_track(before + resumed, pauses=[pause])
    assert not paused.authenticity.suspicious
    m = paused.metrics
    assert m.gap_time_s == 0 and m.max_gap_s == 2
    assert m.pause_time_s == pytest.approx((pause[1] - pause[0]).total_seconds(), abs=20)
    assert m.moving_time_s + m.pause_time_s + m.gap_time_s == pytest.approx(m.duration_s)
    # Without the recorded pause the same silence is missing data.
    unpaused = analyse_track(before + resumed).metrics
    assert unpaused.gap_time_s == pytest.approx(25 * 60 - 599) and unpaused.pause_time_s < 20


def test_an_open_pause_lasts_to_the_last_fix_and_is_not_moving_time():
    points = walk(1200, wobble_m=10)
    m = analyse_track(points, pauses=[(points[600].t, None)]).metrics
    assert m.moving_time_s == pytest.approx(600, abs=10)
    assert m.pause_time_s == pytest.approx(599, abs=10)


def test_signals_are_measured_over_long_moving_stretches_only():
    short = analyse_track(walk(500)).metrics  # about 600 m: too short to tell
    assert short.straightness.value is None and short.regularity.interval_variation is None
    assert short.straightness.measured_m == 0 and not analyse_track(walk(500)).authenticity.suspicious
    m = analyse_track(walk(1500, wobble_m=30)).metrics
    assert m.straightness.stretches == 1 and m.straightness.points == 1500
    assert m.straightness.measured_m == pytest.approx(m.distance_m)
    assert m.regularity.interval_variation == 0
    assert m.regularity.speed_variation is not None and m.regularity.speed_variation > 0.02
