"""Coordinate systems, distances and a local metric plane.

Argument order: scalar functions take `(lat, lon)`; coordinate sequences and shapely geometries use
GeoJSON order `(lon, lat)`. Everything stored is WGS-84.

Chinese map SDKs hand out GCJ-02 (AMap, Tencent, WeChat maps) or BD-09 (Baidu). Both are a few hundred
metres off WGS-84, so every input is normalised with `to_wgs84` before it is compared with anything.
The conversion is the widely published community formula (written here from the maths in
china-domain.md §3.4), with an iterative inverse accurate to well below 1 mm.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from kernel.errors import invalid

# Mean Earth radius (IUGG), used where a sphere is good enough: per-step speed checks, bbox maths.
EARTH_RADIUS_M = 6_371_008.8
# WGS-84 ellipsoid, for lengths and areas.
WGS84_A = 6_378_137.0
WGS84_E2 = 6.69437999014e-3

# GCJ-02 constants: Krasovsky 1940 ellipsoid, as the published algorithm uses them.
_KRASOVSKY_A = 6_378_245.0
_KRASOVSKY_EE = 0.00669342162296594323
_X_PI = math.pi * 3000.0 / 180.0
_GCJ_INVERSE_TOLERANCE_DEG = 1e-10  # about 0.01 mm
_GCJ_INVERSE_MAX_STEPS = 30


class CoordinateSystem(enum.StrEnum):
    WGS84 = "WGS84"
    GCJ02 = "GCJ02"
    BD09 = "BD09"


class LatLon(NamedTuple):
    lat: float
    lon: float


def in_china_box(lat: float, lon: float) -> bool:
    """The coarse box inside which GCJ-02/BD-09 shift coordinates; outside it they equal WGS-84."""
    return 73.66 < lon < 135.05 and 3.86 < lat < 53.55


def _gcj_shift(lat: float, lon: float) -> LatLon:
    x = lon - 105.0
    y = lat - 35.0
    sqrt_abs_x = math.sqrt(abs(x))
    common = (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    t_lat = (
        -100.0
        + 2.0 * x
        + 3.0 * y
        + 0.2 * y * y
        + 0.1 * x * y
        + 0.2 * sqrt_abs_x
        + common
        + (20.0 * math.sin(y * math.pi) + 40.0 * math.sin(y / 3.0 * math.pi)) * 2.0 / 3.0
        + (160.0 * math.sin(y / 12.0 * math.pi) + 320.0 * math.sin(y * math.pi / 30.0)) * 2.0 / 3.0
    )
    t_lon = (
        300.0
        + x
        + 2.0 * y
        + 0.1 * x * x
        + 0.1 * x * y
        + 0.1 * sqrt_abs_x
        + common
        + (20.0 * math.sin(x * math.pi) + 40.0 * math.sin(x / 3.0 * math.pi)) * 2.0 / 3.0
        + (150.0 * math.sin(x / 12.0 * math.pi) + 300.0 * math.sin(x / 30.0 * math.pi)) * 2.0 / 3.0
    )
    rad_lat = math.radians(lat)
    m = 1.0 - _KRASOVSKY_EE * math.sin(rad_lat) ** 2
    sqrt_m = math.sqrt(m)
    d_lat = t_lat * 180.0 / ((_KRASOVSKY_A * (1.0 - _KRASOVSKY_EE)) / (m * sqrt_m) * math.pi)
    d_lon = t_lon * 180.0 / (_KRASOVSKY_A / sqrt_m * math.cos(rad_lat) * math.pi)
    return LatLon(d_lat, d_lon)


def _wgs84_to_gcj02(lat: float, lon: float) -> LatLon:
    if not in_china_box(lat, lon):
        return LatLon(lat, lon)
    d_lat, d_lon = _gcj_shift(lat, lon)
    return LatLon(lat + d_lat, lon + d_lon)


def _gcj02_to_wgs84(lat: float, lon: float) -> LatLon:
    # The forward map has no closed inverse; Newton-like fixed-point iteration w <- w - (f(w) - g)
    # converges because f is a small, smooth perturbation of the identity.
    if not in_china_box(lat, lon):
        return LatLon(lat, lon)
    w_lat, w_lon = lat, lon
    for _ in range(_GCJ_INVERSE_MAX_STEPS):
        g_lat, g_lon = _wgs84_to_gcj02(w_lat, w_lon)
        err_lat, err_lon = g_lat - lat, g_lon - lon
        w_lat -= err_lat
        w_lon -= err_lon
        if abs(err_lat) < _GCJ_INVERSE_TOLERANCE_DEG and abs(err_lon) < _GCJ_INVERSE_TOLERANCE_DEG:
            break
    return LatLon(w_lat, w_lon)


def _gcj02_to_bd09(lat: float, lon: float) -> LatLon:
    if not in_china_box(lat, lon):
        return LatLon(lat, lon)
    z = math.hypot(lon, lat) + 0.00002 * math.sin(lat * _X_PI)
    theta = math.atan2(lat, lon) + 0.000003 * math.cos(lon * _X_PI)
    return LatLon(z * math.sin(theta) + 0.006, z * math.cos(theta) + 0.0065)


def _bd09_to_gcj02(lat: float, lon: float) -> LatLon:
    if not in_china_box(lat, lon):
        return LatLon(lat, lon)
    x, y = lon - 0.0065, lat - 0.006
    z = math.hypot(x, y) - 0.00002 * math.sin(y * _X_PI)
    theta = math.atan2(y, x) - 0.000003 * math.cos(x * _X_PI)
    return LatLon(z * math.sin(theta), z * math.cos(theta))


def to_wgs84(lat: float, lon: float, crs: CoordinateSystem) -> LatLon:
    """Normalise a point given in `crs` to WGS-84. Points outside the China box are returned as given.

    GCJ-02 is inverted to < 1 mm; BD-09 uses the standard closed-form BD->GCJ step, which matches the
    published vectors and is within about 0.1 m of an exact inverse.
    """
    if crs is CoordinateSystem.GCJ02:
        return _gcj02_to_wgs84(lat, lon)
    if crs is CoordinateSystem.BD09:
        return _gcj02_to_wgs84(*_bd09_to_gcj02(lat, lon))
    return LatLon(lat, lon)


def from_wgs84(lat: float, lon: float, crs: CoordinateSystem) -> LatLon:
    """Express a WGS-84 point in `crs`, e.g. GCJ-02 for an AMap/Tencent basemap, BD-09 for Baidu."""
    if crs is CoordinateSystem.GCJ02:
        return _wgs84_to_gcj02(lat, lon)
    if crs is CoordinateSystem.BD09:
        return _gcj02_to_bd09(*_wgs84_to_gcj02(lat, lon))
    return LatLon(lat, lon)


def validate_lat_lon(lat: float, lon: float, fields: tuple[str, str] = ("lat", "lon")) -> LatLon:
    """Refuse NaN, infinities and out-of-range values, naming the offending field."""
    lat_field, lon_field = fields
    if not isinstance(lat, int | float) or not math.isfinite(lat) or not -90.0 <= lat <= 90.0:
        raise invalid(f"Latitude must be a number from -90 to 90, got {lat!r}.", lat_field)
    if not isinstance(lon, int | float) or not math.isfinite(lon) or not -180.0 <= lon <= 180.0:
        raise invalid(f"Longitude must be a number from -180 to 180, got {lon!r}.", lon_field)
    return LatLon(float(lat), float(lon))


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance on the mean sphere; within 0.5 % of the ellipsoid, fine for radius checks."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp = p2 - p1
    dl = math.radians(lon2 - lon1)
    h = math.sin(dp / 2.0) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2.0) ** 2
    return 2.0 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


@dataclass(frozen=True, slots=True)
class BBox:
    """A lat/lon box. When it crosses the antimeridian, `min_lon > max_lon` (the RFC 7946 convention):
    the box is `lon >= min_lon OR lon <= max_lon`. When it reaches a pole, latitude is clamped to ±90 and
    longitude spans the whole circle (-180..180)."""

    min_lat: float
    min_lon: float
    max_lat: float
    max_lon: float

    @property
    def crosses_antimeridian(self) -> bool:
        return self.min_lon > self.max_lon

    def contains(self, lat: float, lon: float) -> bool:
        if not self.min_lat <= lat <= self.max_lat:
            return False
        if self.crosses_antimeridian:
            return lon >= self.min_lon or lon <= self.max_lon
        return self.min_lon <= lon <= self.max_lon


def bbox_around(lat: float, lon: float, radius_m: float) -> BBox:
    """The smallest lat/lon box containing every point within `radius_m` (on the mean sphere)."""
    angular = radius_m / EARTH_RADIUS_M
    d_lat = math.degrees(angular)
    min_lat, max_lat = lat - d_lat, lat + d_lat
    if min_lat <= -90.0 or max_lat >= 90.0 or angular >= math.pi / 2:
        # The circle contains a pole, so every meridian passes through it.
        return BBox(max(min_lat, -90.0), -180.0, min(max_lat, 90.0), 180.0)
    # Widest longitude reach of a spherical cap, attained north of the centre's parallel (exact, not
    # the radius/cos(lat) shortcut, which under-reaches at high latitude).
    d_lon = math.degrees(math.asin(math.sin(angular) / math.cos(math.radians(lat))))
    min_lon, max_lon = lon - d_lon, lon + d_lon
    if min_lon < -180.0:
        min_lon += 360.0
    if max_lon > 180.0:
        max_lon -= 360.0
    return BBox(min_lat, min_lon, max_lat, max_lon)


_SHORT_STEP_M = 20_000.0


def step_lengths_m(lats: np.ndarray, lons: np.ndarray) -> np.ndarray:
    """Ellipsoidal length of each step between consecutive points (vectorised, n-1 values).

    Short steps (all GPS steps) use the ellipsoid's meridian and prime-vertical radii at the step's
    mid-latitude: relative error ~ (step / R)², i.e. below 1e-5 for 20 km. Longer steps use Lambert's
    formula (great circle on reduced latitudes, flattening-corrected), good to ~10 m over 1000 km.
    """
    lats = np.asarray(lats, dtype=float)
    lons = np.asarray(lons, dtype=float)
    if lats.size < 2:
        return np.zeros(0)
    phi = np.radians(lats)
    d_phi = np.diff(phi)
    d_lam = np.radians((np.diff(lons) + 180.0) % 360.0 - 180.0)  # shortest way round the antimeridian
    mid = (phi[:-1] + phi[1:]) / 2.0
    w = 1.0 - WGS84_E2 * np.sin(mid) ** 2
    meridian_r = WGS84_A * (1.0 - WGS84_E2) / (w * np.sqrt(w))
    normal_r = WGS84_A / np.sqrt(w)
    short = np.hypot(meridian_r * d_phi, normal_r * np.cos(mid) * d_lam)
    if not np.any(short > _SHORT_STEP_M):
        return short
    return np.where(short > _SHORT_STEP_M, _lambert_m(phi[:-1], phi[1:], d_lam), short)


def _lambert_m(phi1: np.ndarray, phi2: np.ndarray, d_lam: np.ndarray) -> np.ndarray:
    f = 1.0 - math.sqrt(1.0 - WGS84_E2)
    b1 = np.arctan((1.0 - f) * np.tan(phi1))
    b2 = np.arctan((1.0 - f) * np.tan(phi2))
    h = np.sin((b2 - b1) / 2.0) ** 2 + np.cos(b1) * np.cos(b2) * np.sin(d_lam / 2.0) ** 2
    sigma = 2.0 * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0)))
    p, q = (b1 + b2) / 2.0, (b2 - b1) / 2.0
    with np.errstate(divide="ignore", invalid="ignore"):
        x = (sigma - np.sin(sigma)) * np.sin(p) ** 2 * np.cos(q) ** 2 / np.cos(sigma / 2.0) ** 2
        y = (sigma + np.sin(sigma)) * np.cos(p) ** 2 * np.sin(q) ** 2 / np.sin(sigma / 2.0) ** 2
        dist = WGS84_A * (sigma - f / 2.0 * (x + y))
    return np.where(sigma > 0, dist, 0.0)


def geodesic_length_m(coords: Sequence[tuple[float, float]]) -> float:
    """Ellipsoidal length of a polyline given as `(lon, lat)` pairs; 0 for fewer than two points."""
    if len(coords) < 2:
        return 0.0
    arr = np.asarray(coords, dtype=float)
    return float(step_lengths_m(arr[:, 1], arr[:, 0]).sum())


def centre_of(lons: np.ndarray, lats: np.ndarray) -> LatLon:
    """Mean position via unit vectors: well defined across the antimeridian and at the poles."""
    phi, lam = np.radians(np.asarray(lats, dtype=float)), np.radians(np.asarray(lons, dtype=float))
    x = float(np.mean(np.cos(phi) * np.cos(lam)))
    y = float(np.mean(np.cos(phi) * np.sin(lam)))
    z = float(np.mean(np.sin(phi)))
    if math.hypot(x, y, z) < 1e-12:  # antipodal mix: no meaningful centre, any is as good
        return LatLon(float(np.mean(lats)), float(np.mean(lons)))
    return LatLon(math.degrees(math.atan2(z, math.hypot(x, y))), math.degrees(math.atan2(y, x)))


class LocalPlane:
    """Azimuthal equidistant projection about a centre, scaled to the WGS-84 ellipsoid's local radii.

    Output is metres east (x) and north (y) of the centre. Trigonometry of the longitude difference
    makes it continuous across the antimeridian and defined at the poles. Distances and areas are
    accurate to ~1e-5 within 50 km of the centre, which is the scale of a patrol area.
    """

    def __init__(self, centre_lat: float, centre_lon: float) -> None:
        self.centre = LatLon(centre_lat, centre_lon)
        self._phi0 = math.radians(centre_lat)
        w = 1.0 - WGS84_E2 * math.sin(self._phi0) ** 2
        self._north_r = WGS84_A * (1.0 - WGS84_E2) / (w * math.sqrt(w))
        self._east_r = WGS84_A / math.sqrt(w)

    @classmethod
    def around(cls, geometry: BaseGeometry) -> LocalPlane:
        coords = shapely.get_coordinates(geometry)
        if coords.size == 0:
            return cls(0.0, 0.0)
        return cls(*centre_of(coords[:, 0], coords[:, 1]))

    def forward(self, lons: np.ndarray, lats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        phi = np.radians(np.asarray(lats, dtype=float))
        d_lam = np.radians(np.asarray(lons, dtype=float) - self.centre.lon)
        sin0, cos0 = math.sin(self._phi0), math.cos(self._phi0)
        cos_phi = np.cos(phi)
        cos_c = np.clip(sin0 * np.sin(phi) + cos0 * cos_phi * np.cos(d_lam), -1.0, 1.0)
        c = np.arccos(cos_c)
        sin_c = np.sin(c)
        with np.errstate(divide="ignore", invalid="ignore"):
            k = np.where(sin_c > 1e-12, c / sin_c, 1.0)
        x = k * cos_phi * np.sin(d_lam) * self._east_r
        y = k * (cos0 * np.sin(phi) - sin0 * cos_phi * np.cos(d_lam)) * self._north_r
        return x, y

    def project(self, geometry: BaseGeometry) -> BaseGeometry:
        """The same geometry (lon/lat) in this plane's metres."""

        def to_plane(xy: np.ndarray) -> np.ndarray:
            x, y = self.forward(xy[:, 0], xy[:, 1])
            return np.column_stack([x, y])

        return shapely.transform(geometry, to_plane)


def polygon_area_m2(polygon: BaseGeometry) -> float:
    """Area of a lon/lat (Multi)Polygon in m², measured in a local plane about its centre."""
    if polygon.is_empty:
        return 0.0
    return float(LocalPlane.around(polygon).project(polygon).area)
