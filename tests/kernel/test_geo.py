import math

import numpy as np
import pytest
import shapely

from kernel.errors import DomainError, ErrorCode
from kernel.geo import (
    CoordinateSystem,
    LocalPlane,
    bbox_around,
    from_wgs84,
    geodesic_length_m,
    haversine_m,
    polygon_area_m2,
    to_wgs84,
    validate_lat_lon,
)

# china-domain.md §3.3: (lon, lat) WGS-84 -> GCJ-02 -> BD-09
CITY_VECTORS = [
    ((116.3975, 39.9087), (116.403744, 39.910103), (116.410117, 39.916443)),  # Beijing
    ((121.4737, 31.2304), (121.478223, 31.228458), (121.484781, 31.234311)),  # Shanghai
    ((113.2644, 23.1291), (113.269730, 23.126423), (113.276151, 23.132711)),  # Guangzhou
]
VECTOR_TOLERANCE_DEG = 1e-6


@pytest.mark.parametrize(("wgs", "gcj", "bd"), CITY_VECTORS)
def test_wgs84_to_gcj02_and_bd09_match_published_vectors(wgs, gcj, bd):
    lat, lon = from_wgs84(wgs[1], wgs[0], CoordinateSystem.GCJ02)
    assert lon == pytest.approx(gcj[0], abs=VECTOR_TOLERANCE_DEG)
    assert lat == pytest.approx(gcj[1], abs=VECTOR_TOLERANCE_DEG)
    lat, lon = from_wgs84(wgs[1], wgs[0], CoordinateSystem.BD09)
    assert lon == pytest.approx(bd[0], abs=VECTOR_TOLERANCE_DEG)
    assert lat == pytest.approx(bd[1], abs=VECTOR_TOLERANCE_DEG)


def test_bd09_to_gcj02_matches_published_vector():
    # BD (113.739873, 34.356696) -> GCJ (113.73337197, 34.35063027); check via the GCJ of the result.
    wgs = to_wgs84(34.356696, 113.739873, CoordinateSystem.BD09)
    lat, lon = from_wgs84(wgs.lat, wgs.lon, CoordinateSystem.GCJ02)
    assert lon == pytest.approx(113.73337197, abs=VECTOR_TOLERANCE_DEG)
    assert lat == pytest.approx(34.35063027, abs=VECTOR_TOLERANCE_DEG)


@pytest.mark.parametrize(("wgs", "gcj", "bd"), CITY_VECTORS)
def test_gcj02_inverse_round_trips_below_a_millimetre(wgs, gcj, bd):
    shifted = from_wgs84(wgs[1], wgs[0], CoordinateSystem.GCJ02)
    back = to_wgs84(shifted.lat, shifted.lon, CoordinateSystem.GCJ02)
    assert haversine_m(back.lat, back.lon, wgs[1], wgs[0]) < 0.001


@pytest.mark.parametrize(("wgs", "gcj", "bd"), CITY_VECTORS)
def test_bd09_round_trips_within_the_published_formula_precision(wgs, gcj, bd):
    back = to_wgs84(*from_wgs84(wgs[1], wgs[0], CoordinateSystem.BD09), CoordinateSystem.BD09)
    # The standard closed-form BD->GCJ step (kept for compatibility with the published vectors) is
    # approximate to about a decimetre.
    assert haversine_m(back.lat, back.lon, wgs[1], wgs[0]) < 0.2


def test_offset_is_hundreds_of_metres_inside_china():
    shifted = from_wgs84(39.9087, 116.3975, CoordinateSystem.GCJ02)
    assert 500 < haversine_m(39.9087, 116.3975, *shifted) < 600


@pytest.mark.parametrize("crs", list(CoordinateSystem))
def test_no_shift_outside_china(crs):
    paris = (48.8566, 2.3522)
    assert from_wgs84(*paris, crs) == paris
    assert to_wgs84(*paris, crs) == paris


@pytest.mark.parametrize(
    ("lat", "lon", "field"),
    [
        (math.nan, 0.0, "lat"),
        (0.0, math.inf, "lon"),
        (90.0001, 0.0, "lat"),
        (0.0, -180.5, "lon"),
        ("1", 0.0, "lat"),
    ],
)
def test_validate_lat_lon_refuses_bad_values_naming_the_field(lat, lon, field):
    with pytest.raises(DomainError) as err:
        validate_lat_lon(lat, lon)
    assert err.value.code is ErrorCode.INVALID
    assert err.value.field == [field]


def test_validate_lat_lon_accepts_edges():
    assert validate_lat_lon(-90, 180) == (-90.0, 180.0)


def test_haversine_one_degree_of_latitude():
    assert haversine_m(0, 0, 1, 0) == pytest.approx(6_371_008.8 * math.pi / 180, rel=1e-12)


def test_geodesic_length_matches_ellipsoid_arcs():
    # WGS-84 meridian arc equator -> 1°N is 110,574.389 m; one degree along the equator 111,319.491 m.
    assert geodesic_length_m([(0.0, i / 1000) for i in range(1001)]) == pytest.approx(110_574.389, abs=0.01)
    assert geodesic_length_m([(0.0, 0.0), (1.0, 0.0)]) == pytest.approx(111_319.491, abs=0.01)
    # A long step uses Lambert's formula: within a metre of the summed short steps over 10°.
    long_step = geodesic_length_m([(0.0, 0.0), (0.0, 10.0)])
    assert long_step == pytest.approx(geodesic_length_m([(0.0, i / 100) for i in range(1001)]), abs=1.0)


def test_geodesic_length_across_the_antimeridian_takes_the_short_way():
    assert geodesic_length_m([(179.999, 0.0), (-179.999, 0.0)]) == pytest.approx(222.6, abs=0.1)


def test_geodesic_length_of_fewer_than_two_points_is_zero():
    assert geodesic_length_m([]) == 0.0
    assert geodesic_length_m([(1.0, 2.0)]) == 0.0


def test_bbox_around_contains_the_circle():
    box = bbox_around(60.0, 10.0, 10_000)
    assert box.max_lat - 60.0 == pytest.approx(10_000 / 6_371_008.8 * 180 / math.pi)
    # The widest point of the circle is north of 60°; the naive radius/cos(lat) under-reaches.
    assert box.max_lon - 10.0 > math.degrees(10_000 / 6_371_008.8) / math.cos(math.radians(60.0))
    assert box.contains(60.0, 10.17) and not box.contains(60.0, 10.2)


def test_bbox_around_wraps_at_the_antimeridian():
    box = bbox_around(0.0, 179.999, 1_000)
    assert box.crosses_antimeridian
    assert box.min_lon > 179.99 and box.max_lon < -179.99
    assert box.contains(0.0, -179.995) and box.contains(0.0, 179.995)
    assert not box.contains(0.0, 0.0)


def test_bbox_around_a_pole_spans_all_longitudes():
    box = bbox_around(89.995, 45.0, 1_000)
    assert (box.min_lon, box.max_lat, box.max_lon) == (-180.0, 90.0, 180.0)
    assert box.contains(89.999, -135.0)


def test_local_plane_preserves_distances_near_the_centre():
    plane = LocalPlane(30.0, 120.0)
    x, y = plane.forward(np.array([120.05]), np.array([30.03]))
    assert math.hypot(x[0], y[0]) == pytest.approx(
        geodesic_length_m([(120.0, 30.0), (120.05, 30.03)]), rel=1e-4
    )


def test_local_plane_is_continuous_across_the_antimeridian():
    plane = LocalPlane(0.0, 180.0)
    x, _ = plane.forward(np.array([179.99, -179.99]), np.array([0.0, 0.0]))
    assert x[1] - x[0] == pytest.approx(2226.4, abs=0.5)


def test_polygon_area_of_a_small_equatorial_square():
    # 0.01° x 0.01° at the equator: 1113.195 m x 1105.744 m on the ellipsoid.
    assert polygon_area_m2(shapely.box(0, 0, 0.01, 0.01)) == pytest.approx(1113.195 * 1105.744, rel=1e-4)


def test_polygon_area_around_a_pole():
    # A cap of radius ~1.1 km around the North Pole, given as a ring of longitudes.
    ring = [(lon, 89.99) for lon in range(-180, 180, 5)]
    area = polygon_area_m2(shapely.Polygon(ring))
    radius = 6_399_593.6 * math.radians(0.01)  # polar radius of curvature c = a²/b
    assert area == pytest.approx(math.pi * radius**2, rel=2e-3)
