"""HTTP routes for patrols that are not GraphQL: a patrol's track as GPX or GeoJSON.

`GET /patrols/{id}/track.gpx` and `/patrols/{id}/track.geojson`, where `id` is the patrol's global id
(or its number). Bearer auth; the same rule as the track in GraphQL: a patrol the caller may not see
answers 404 exactly like a missing one. Flagged fixes are left out of the export.

`GET /patrol-areas/{code}/signboard.json`: the area's public signboard (patrols.signboard), no sign-in.
"""

from __future__ import annotations

import json

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from strawberry import relay

from identity import audit
from identity.models import AccessKind
from kernel.database import is_row_id
from kernel.errors import DomainError, ErrorCode, not_found
from patrols import access, signboard
from patrols.gpx import to_geojson, to_gpx
from patrols.models import Patrol, PatrolArea, TrackPoint
from patrols.track import TrackPoint as Fix
from schema.context import Services
from server.auth import principal_of
from server.errors import error_response

# Browsers and proxies revalidate (ETag) after a minute; a signboard changes at most once a day.
SIGNBOARD_MAX_AGE = 60


def _patrol_id(raw: str) -> int | None:
    """The patrol's row id, or None for anything that cannot name one (a 404, like a missing patrol)."""
    if raw.isdigit():
        number = int(raw)
    else:
        try:
            gid = relay.GlobalID.from_id(raw)
            if gid.type_name != "Patrol" or not gid.node_id.isdigit():
                return None
            number = int(gid.node_id)
        except ValueError:
            return None
    return number if is_row_id(number) else None


async def _visible_patrol(request: Request) -> Patrol | None:
    """The patrol if the caller may see it; a refused attempt at a track (missing ones alike) is logged."""
    patrol_id = _patrol_id(request.path_params["patrol_id"])
    if patrol_id is None:
        return None
    patrol = await access.visible_patrol(principal_of(request), patrol_id)
    if patrol is None:
        await audit.note_refusal(principal_of(request), AccessKind.TRACK, "patrol", patrol_id)
    return patrol


async def _valid_fixes(patrol: Patrol) -> list[Fix]:
    rows = (
        await TrackPoint.filter(patrol_id=patrol.id, flags=None)
        .order_by("t", "seq")
        .values_list("seq", "t", "lat", "lon")
    )
    return [Fix(seq, t, lat, lon) for seq, t, lat, lon in rows]


async def track_export(request: Request) -> Response:
    if principal_of(request) is None:
        return error_response(
            DomainError(ErrorCode.UNAUTHENTICATED, "Sign in first (Authorization: Bearer <access token>).")
        )
    if request.path_params["format"] not in ("gpx", "geojson"):
        return error_response(DomainError(ErrorCode.NOT_FOUND, "Tracks export as .gpx or .geojson."))
    patrol = await _visible_patrol(request)
    if patrol is None:
        return error_response(not_found("patrol"))
    await audit.note_read(principal_of(request), AccessKind.TRACK, "patrol", patrol.id)
    area = await PatrolArea.get(id=patrol.area_id)
    fixes = await _valid_fixes(patrol)
    name = f"{area.code} {area.name} {patrol.started_at:%Y-%m-%d}"
    filename = f"patrol-{patrol.id}"
    headers = {"cache-control": "private, no-store"}
    if request.path_params["format"] == "gpx":
        headers["content-disposition"] = f'attachment; filename="{filename}.gpx"'
        return Response(to_gpx(fixes, name), media_type="application/gpx+xml", headers=headers)
    feature = to_geojson(
        fixes, {"name": name, "area": area.code, "mode": patrol.mode.value, "distance_m": patrol.distance_m}
    )
    headers["content-disposition"] = f'attachment; filename="{filename}.geojson"'
    return Response(json.dumps(feature), media_type="application/geo+json", headers=headers)


async def signboard_json(request: Request) -> Response:
    """`GET /patrol-areas/{code}/signboard.json`: public, cacheable; `If-None-Match` answers 304."""
    board = await signboard.signboard(request.path_params["code"])
    if board is None:
        return error_response(not_found("patrol area"))
    headers = {"etag": board.etag, "cache-control": f"public, max-age={SIGNBOARD_MAX_AGE}"}
    if board.etag in {tag.strip() for tag in request.headers.get("if-none-match", "").split(",")}:
        return Response(status_code=304, headers=headers)
    return Response(board.body, media_type="application/json", headers=headers)


def patrol_routes(services: Services) -> list[BaseRoute]:
    return [
        Route("/patrols/{patrol_id}/track.{format:str}", track_export, methods=["GET"]),
        Route("/patrol-areas/{code}/signboard.json", signboard_json, methods=["GET"]),
    ]
