from datetime import UTC, datetime, timedelta, timezone

import pytest

from kernel.errors import DomainError, ErrorCode
from patrols import gpx
from patrols.gpx import ParsedPoint, parse_gpx, to_geojson, to_gpx
from patrols.track import TrackPoint

T0 = datetime(2024, 5, 1, 8, 0, 0, 250000, tzinfo=UTC)


def document(body: str, namespace: str = "http://www.topografix.com/GPX/1/1") -> bytes:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><gpx version="1.1" xmlns="{namespace}">{body}</gpx>'.encode()
    )


def trkpt(lat: float, lon: float, time: str | None) -> str:
    inner = f"<ele>12.5</ele><time>{time}</time>" if time else "<ele>12.5</ele>"
    return f'<trkpt lat="{lat}" lon="{lon}">{inner}</trkpt>'


def expect_invalid(data: bytes, fragment: str) -> DomainError:
    with pytest.raises(DomainError) as err:
        parse_gpx(data)
    assert err.value.code is ErrorCode.INVALID
    assert fragment in err.value.message
    return err.value


def test_parses_gpx_1_1_tracks_in_document_order_with_utc_times():
    body = (
        "<wpt lat='1' lon='1'><time>2024-05-01T00:00:00Z</time></wpt>"
        "<rte><rtept lat='2' lon='2'><time>2024-05-01T00:00:00Z</time></rtept></rte>"
        "<trk><trkseg>"
        + trkpt(30.1, 120.2, "2024-05-01T08:00:00Z")
        + trkpt(30.2, 120.3, "2024-05-01T16:00:01+08:00")
        + "</trkseg><trkseg>"
        + trkpt(30.3, 120.4, "2024-05-01T08:00:02.5")
        + "</trkseg></trk>"
    )
    points = parse_gpx(document(body))
    assert points == [
        ParsedPoint(30.1, 120.2, datetime(2024, 5, 1, 8, 0, 0, tzinfo=UTC)),
        ParsedPoint(30.2, 120.3, datetime(2024, 5, 1, 8, 0, 1, tzinfo=UTC)),
        ParsedPoint(30.3, 120.4, datetime(2024, 5, 1, 8, 0, 2, 500000, tzinfo=UTC)),
    ]
    assert all(p.t.tzinfo is UTC for p in points)


def test_parses_gpx_1_0():
    body = "<trk><trkseg>" + trkpt(1.5, 2.5, "2024-05-01T08:00:00Z") + "</trkseg></trk>"
    assert parse_gpx(document(body, "http://www.topografix.com/GPX/1/0"))[0].lat == 1.5


def test_not_xml_is_refused():
    expect_invalid(b"\x89PNG\r\n\x1a\n not a gpx", "not well-formed XML")


def test_billion_laughs_is_refused_before_expansion():
    bomb = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol9 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<gpx xmlns="http://www.topografix.com/GPX/1/1"><trk><name>&lol9;</name></trk></gpx>"""
    expect_invalid(bomb, "DTD or entities")


def test_external_entity_is_refused():
    xxe = b"""<?xml version="1.0"?><!DOCTYPE gpx [<!ENTITY x SYSTEM "file:///etc/passwd">]>
<gpx xmlns="http://www.topografix.com/GPX/1/1"><trk><name>&x;</name></trk></gpx>"""
    expect_invalid(xxe, "DTD or entities")


def test_wrong_root_is_refused():
    expect_invalid(b'<kml xmlns="http://www.opengis.net/kml/2.2"/>', "root element")
    expect_invalid(b'<gpx xmlns="http://example.com/other"/>', "root element")


def test_points_without_time_are_refused_with_a_count():
    body = (
        "<trk><trkseg>"
        + trkpt(1, 1, "2024-05-01T08:00:00Z")
        + trkpt(1, 2, None)
        + trkpt(1, 3, "not a time")
        + "</trkseg></trk>"
    )
    expect_invalid(document(body), "2 of 3 track points have no readable <time>")


def test_a_file_with_only_routes_has_no_track_points():
    body = "<rte><rtept lat='2' lon='2'><time>2024-05-01T00:00:00Z</time></rtept></rte>"
    expect_invalid(document(body), "no track points")


def test_bad_coordinates_are_refused():
    body = "<trk><trkseg>" + trkpt(91, 1, "2024-05-01T08:00:00Z") + "</trkseg></trk>"
    expect_invalid(document(body), "invalid lat")


def test_size_cap(monkeypatch):
    monkeypatch.setattr(gpx, "MAX_GPX_BYTES", 100)
    with pytest.raises(DomainError) as err:
        parse_gpx(document("<trk><trkseg>" + trkpt(1, 1, "2024-05-01T08:00:00Z") * 3 + "</trkseg></trk>"))
    assert err.value.code is ErrorCode.TOO_LARGE


def test_gpx_round_trip_keeps_positions_and_times():
    points = [
        TrackPoint(i, T0 + timedelta(seconds=i), 30.123456789 + i * 1e-5, 120.987654321, 5.0)
        for i in range(5)
    ]
    parsed = parse_gpx(to_gpx(points, "巡河 2024-05-01"))
    assert [(p.lat, p.lon, p.t) for p in parsed] == [(p.lat, p.lon, p.t) for p in points]
    assert "巡河 2024-05-01".encode() in to_gpx(points, "巡河 2024-05-01")


def test_gpx_export_writes_utc():
    local = ParsedPoint(1.0, 2.0, datetime(2024, 5, 1, 16, 0, tzinfo=timezone(timedelta(hours=8))))
    assert b"<time>2024-05-01T08:00:00Z</time>" in to_gpx([local], "x")


def test_geojson_line_with_per_point_times():
    points = [ParsedPoint(30.0, 120.0, T0), ParsedPoint(30.001, 120.001, T0 + timedelta(seconds=1))]
    feature = to_geojson(points, {"patrolId": "p1"})
    assert feature == {
        "type": "Feature",
        "geometry": {"type": "LineString", "coordinates": [[120.0, 30.0], [120.001, 30.001]]},
        "properties": {
            "patrolId": "p1",
            "coordinateProperties": {"times": ["2024-05-01T08:00:00.250000Z", "2024-05-01T08:00:01.250000Z"]},
        },
    }


def test_geojson_of_one_point_and_of_none():
    assert to_geojson([ParsedPoint(30.0, 120.0, T0)])["geometry"] == {
        "type": "Point",
        "coordinates": [120.0, 30.0],
    }
    assert to_geojson([])["geometry"] is None
