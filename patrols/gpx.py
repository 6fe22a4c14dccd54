"""GPX import and GPX / GeoJSON export of patrol tracks.

Import reads `trk/trkseg/trkpt` of GPX 1.0 and 1.1 (and files without a namespace, which some
exporters write). Routes (`rte/rtept`) are plans and waypoints (`wpt`) are single marks, not a record
of where someone went, so both are ignored. Every point must carry a `<time>`: a track without times
cannot prove when the patrol happened (EarthRanger's GPX import has the same rule).

Parsing goes through defusedxml with DTDs forbidden outright, so entity-expansion bombs and external
entities are refused before any expansion happens.
"""

from __future__ import annotations

import io
import math
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import defusedxml
import defusedxml.ElementTree as SafeET

from kernel.errors import DomainError, ErrorCode, invalid

GPX_NAMESPACES = ("http://www.topografix.com/GPX/1/1", "http://www.topografix.com/GPX/1/0", "")
MAX_GPX_BYTES = 20 * 1024 * 1024  # a 3-hour 1 Hz track is about 1.5 MB
MAX_GPX_POINTS = 200_000


@dataclass(frozen=True, slots=True)
class ParsedPoint:
    lat: float
    lon: float
    t: datetime  # aware UTC


class TimedPoint(Protocol):
    @property
    def lat(self) -> float: ...
    @property
    def lon(self) -> float: ...
    @property
    def t(self) -> datetime: ...


def _check_size(data: bytes) -> None:
    if len(data) > MAX_GPX_BYTES:
        raise DomainError(
            ErrorCode.TOO_LARGE,
            f"GPX file is {len(data)} bytes; at most {MAX_GPX_BYTES} are accepted.",
            ["file"],
        )


def _namespace_of(root: ET.Element) -> str:
    namespace, _, local = root.tag[1:].partition("}") if root.tag.startswith("{") else ("", "", root.tag)
    if local != "gpx" or namespace not in GPX_NAMESPACES:
        raise invalid(f"Not a GPX document: the root element is <{root.tag}>, expected <gpx>.", "file")
    return namespace


def _parse_time(text: str | None) -> datetime | None:
    if not text or not text.strip():
        return None
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    # GPX times are UTC by definition; a missing offset means UTC, not local time.
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _coordinate(element: ET.Element, name: str, limit: float, index: int) -> float:
    try:
        value = float(element.get(name, "nan"))
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or abs(value) > limit:
        raise invalid(f"Track point {index + 1} has an invalid {name} {element.get(name)!r}.", "file")
    return value


def _track_points(data: bytes, max_points: int) -> Iterator[ET.Element]:
    """The `gpx/trk/trkseg/trkpt` elements as the parser finishes each, refused with TOO_LARGE as
    soon as there are more than `max_points`, so an oversized file costs only its first part."""
    path: list[str] = []
    point_path: list[str] = []
    count = 0
    try:
        events = SafeET.iterparse(
            io.BytesIO(data), ("start", "end"), forbid_dtd=True, forbid_entities=True, forbid_external=True
        )
        for event, element in events:
            if event == "start":
                if not path:
                    namespace = _namespace_of(element)
                    prefix = f"{{{namespace}}}" if namespace else ""
                    point_path = [f"{prefix}{tag}" for tag in ("gpx", "trk", "trkseg", "trkpt")]
                path.append(element.tag)
                continue
            is_point = path == point_path
            path.pop()
            if is_point:
                count += 1
                if count > max_points:
                    raise DomainError(
                        ErrorCode.TOO_LARGE, f"GPX file has more than {max_points} track points.", ["file"]
                    )
                yield element
                element.clear()  # what is read is kept as a ParsedPoint; the tree need not grow
    except defusedxml.DefusedXmlException:
        raise invalid("GPX file declares a DTD or entities, which are not accepted.", "file") from None
    except ET.ParseError as exc:
        raise invalid(f"File is not well-formed XML ({exc}).", "file") from None


def parse_gpx(data: bytes, max_points: int = MAX_GPX_POINTS) -> list[ParsedPoint]:
    """Track points of a GPX file in document order, with times in UTC.

    The file is read as a stream. Refused with INVALID: non-XML, a DTD/entity declaration (XML
    bombs), a root other than <gpx>, no track points, bad coordinates, unreadable times, any point
    without a time; TOO_LARGE above the size cap, or as soon as there are more than `max_points`.
    CPU-bound on a large file: callers on the event loop run it in a worker thread.
    """
    _check_size(data)
    points: list[ParsedPoint] = []
    missing = total = 0
    bad_coordinate: DomainError | None = None
    for index, element in enumerate(_track_points(data, max_points)):
        total += 1
        prefix = element.tag[: element.tag.index("}") + 1] if element.tag.startswith("{") else ""
        t = _parse_time(element.findtext(f"{prefix}time"))
        if t is None:
            missing += 1
            continue
        try:
            lat, lon = _coordinate(element, "lat", 90.0, index), _coordinate(element, "lon", 180.0, index)
        except DomainError as exc:  # reported after the missing times, which say more about the file
            bad_coordinate = bad_coordinate or exc
            continue
        points.append(ParsedPoint(lat, lon, t))
    if not total:
        raise invalid(
            "GPX file has no track points (<trk><trkseg><trkpt>); routes and waypoints are ignored.", "file"
        )
    if missing:
        raise invalid(
            f"{missing} of {total} track points have no readable <time>; every point needs one.", "file"
        )
    if bad_coordinate is not None:
        raise bad_coordinate
    return points


def _utc_text(t: datetime) -> str:
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


def to_gpx(points: Sequence[TimedPoint], name: str) -> bytes:
    """A GPX 1.1 document with one track and one segment; coordinates keep full float precision."""
    # The default namespace is written as a plain attribute, avoiding ElementTree's global prefix registry.
    root = ET.Element("gpx", {"xmlns": GPX_NAMESPACES[0], "version": "1.1", "creator": "envcase"})
    track = ET.SubElement(root, "trk")
    ET.SubElement(track, "name").text = name
    segment = ET.SubElement(track, "trkseg")
    for p in points:
        element = ET.SubElement(segment, "trkpt", {"lat": repr(p.lat), "lon": repr(p.lon)})
        ET.SubElement(element, "time").text = _utc_text(p.t)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def to_geojson(points: Sequence[TimedPoint], props: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A GeoJSON Feature: a LineString (a Point for a single fix, no geometry when empty), with the
    per-point UTC times in `properties.coordinateProperties.times` (the convention togeojson uses)."""
    coordinates = [[p.lon, p.lat] for p in points]
    if len(coordinates) >= 2:
        geometry: dict[str, Any] | None = {"type": "LineString", "coordinates": coordinates}
    elif coordinates:
        geometry = {"type": "Point", "coordinates": coordinates[0]}
    else:
        geometry = None
    properties = {**(props or {}), "coordinateProperties": {"times": [_utc_text(p.t) for p in points]}}
    return {"type": "Feature", "geometry": geometry, "properties": properties}
