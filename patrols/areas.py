"""Patrol areas from GeoJSON: validated, measured on the ellipsoid, boxed for quick filtering."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
from shapely.geometry import shape

from kernel.errors import invalid
from kernel.geo import geodesic_length_m, polygon_area_m2
from patrols.models import PatrolArea
from patrols.rules import AreaKind

_LINE_TYPES = {"LineString", "MultiLineString"}
_POLYGON_TYPES = {"Polygon", "MultiPolygon"}
MAX_AREA_VERTICES = 50_000


@dataclass(frozen=True, slots=True)
class AreaMeasures:
    length_m: float  # line length, or boundary length for a polygon
    area_m2: float
    bbox: tuple[float, float, float, float]  # min_lat, min_lon, max_lat, max_lon


def measure(kind: AreaKind, geometry: object, *field: str) -> AreaMeasures:
    """Check that `geometry` is GeoJSON of the right shape for `kind` and measure it."""
    wanted = _LINE_TYPES if kind is AreaKind.RIVER_SEGMENT else _POLYGON_TYPES
    if not isinstance(geometry, Mapping) or geometry.get("type") not in wanted:
        raise invalid(f"A {kind.lower()} needs a GeoJSON {' or '.join(sorted(wanted))}.", *field)
    try:
        geom = shape(geometry)
    except (ValueError, TypeError, AttributeError, IndexError, shapely.errors.ShapelyError):
        raise invalid("Geometry is not valid GeoJSON.", *field) from None
    coords = shapely.get_coordinates(geom)
    if coords.size == 0 or len(coords) > MAX_AREA_VERTICES:
        raise invalid(f"Geometry must have 1 to {MAX_AREA_VERTICES} vertices.", *field)
    if (
        not np.all(np.isfinite(coords))
        or np.any(np.abs(coords[:, 0]) > 180)
        or np.any(np.abs(coords[:, 1]) > 90)
    ):
        raise invalid("Coordinates must be WGS-84 [longitude, latitude].", *field)
    if kind is AreaKind.RIVER_SEGMENT:
        length = sum(geodesic_length_m(shapely.get_coordinates(p).tolist()) for p in shapely.get_parts(geom))
        area = 0.0
    else:
        if not geom.is_valid:
            raise invalid(f"Polygon is not valid ({shapely.is_valid_reason(geom)}).", *field)
        rings = shapely.get_parts(geom.boundary)
        length = sum(geodesic_length_m(shapely.get_coordinates(r).tolist()) for r in rings)
        area = polygon_area_m2(geom)
    if length <= 0:
        raise invalid("Geometry has no length.", *field)
    lons, lats = coords[:, 0], coords[:, 1]
    return AreaMeasures(
        length, area, (float(lats.min()), float(lons.min()), float(lats.max()), float(lons.max()))
    )


def _region(value: Any, *field: str) -> str:
    if not isinstance(value, str) or not value.isdigit() or len(value) not in (6, 9, 12):
        raise invalid("admin_region must be a 6, 9 or 12 digit division code.", *field)
    return value


async def upsert_area(
    *, code: str, name: str, kind: AreaKind, admin_region: str, geometry: Mapping[str, Any]
) -> PatrolArea:
    """Create the area, or update the one with this code (re-importing a corrected file is normal)."""
    if not code or len(code) > 64:
        raise invalid("code must be 1-64 characters.", "code")
    if not name or len(name) > 200:
        raise invalid("name must be 1-200 characters.", "name")
    measures = measure(kind, geometry, "geometry")
    values = {
        "name": name,
        "kind": kind,
        "admin_region": _region(admin_region, "admin_region"),
        "geometry": dict(geometry),
        "length_m": measures.length_m,
        "area_m2": measures.area_m2,
        "min_lat": measures.bbox[0],
        "min_lon": measures.bbox[1],
        "max_lat": measures.bbox[2],
        "max_lon": measures.bbox[3],
    }
    area, created = await PatrolArea.get_or_create(code=code, defaults=values)
    if not created:
        await area.update_from_dict(values).save()
    return area


async def import_feature_collection(collection: object) -> list[PatrolArea]:
    """Import a GeoJSON FeatureCollection whose features carry `code`, `name`, `kind`, `admin_region`.

    All features are checked before anything is written; the errors name the feature at fault.
    """
    features = (
        collection.get("features")
        if isinstance(collection, Mapping) and collection.get("type") == "FeatureCollection"
        else None
    )
    if not isinstance(features, list) or not features:
        raise invalid("Expected a GeoJSON FeatureCollection with at least one feature.", "geojson")
    parsed = []
    for i, feature in enumerate(features):
        where = ("geojson", "features", str(i))
        if not isinstance(feature, Mapping):
            raise invalid("Each feature must be a GeoJSON Feature.", *where)
        props = feature.get("properties") or {}
        try:
            kind = AreaKind(props.get("kind", ""))
        except ValueError:
            raise invalid(
                f"kind must be one of {', '.join(AreaKind)}.", *where, "properties", "kind"
            ) from None
        measure(kind, feature.get("geometry"), *where, "geometry")
        _region(props.get("admin_region"), *where, "properties", "admin_region")
        parsed.append((props, kind, feature["geometry"]))
    return [
        await upsert_area(
            code=str(props.get("code", "")),
            name=str(props.get("name", "")),
            kind=kind,
            admin_region=props["admin_region"],
            geometry=geometry,
        )
        for props, kind, geometry in parsed
    ]
