"""HTTP routes for media that are not GraphQL: resumable upload chunks and photo serving.

Uploads (tus / IETF resumable-upload style; the session is opened by the `photoUploadStart` mutation):
    HEAD  /uploads/{id}                       -> 200, Upload-Offset: bytes the server has
    PATCH /uploads/{id}, Upload-Offset: n     -> 204, Upload-Offset: new offset (body = the next bytes)
Errors answer `{"errors": [{"message", "extensions": {"code"}}]}`: 401 UNAUTHENTICATED, 404 NOT_FOUND
(also for another user's upload), 409 OFFSET_MISMATCH (with the current Upload-Offset), 413 TOO_LARGE.

Serving:
    GET /media/derivatives/ab/cd/<sha256>-<size>.jpg   display or thumb, for whoever may see the photo
    GET /media/photos/{id}/original                   the evidence original, staff only
"""

from __future__ import annotations

import logging

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from identity import audit
from identity.models import AccessKind
from identity.service import Principal
from kernel.database import is_row_id
from kernel.errors import DomainError, ErrorCode
from media.intake import OffsetMismatch, PhotoIntake
from media.service import derivative_for, original_for
from media.storage import Storage, StorageUnavailable
from schema.context import Services
from server.auth import principal_of
from server.errors import error_response

log = logging.getLogger(__name__)

_CONTENT_TYPES = {"jpg": "image/jpeg", "png": "image/png", "webp": "image/webp", "heic": "image/heic"}
_NO_STORE = {"Cache-Control": "no-store"}
# What a browser may do with a served image: show it, nothing else.
_SAFE_MEDIA_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; sandbox",
    "Referrer-Policy": "no-referrer",
}


def _error(code: ErrorCode, message: str, headers: dict[str, str] | None = None) -> Response:
    return error_response(DomainError(code, message), headers or _NO_STORE)


def _principal(request: Request) -> Principal | None:
    return principal_of(request)


def _not_found() -> Response:
    return _error(ErrorCode.NOT_FOUND, "No such file.")


def media_routes(services: Services) -> list[BaseRoute]:
    intake = services.media
    assert intake is not None, "the media routes need Services.media"
    return [
        Route(
            "/uploads/{upload_id}", UploadEndpoint(intake).handle, methods=["HEAD", "PATCH"], name="upload"
        ),
        Route(
            "/media/photos/{photo_id:int}/original", OriginalEndpoint(intake.storage).handle, methods=["GET"]
        ),
        Route("/media/{key:path}", DerivativeEndpoint(intake.storage).handle, methods=["GET"], name="media"),
    ]


class UploadEndpoint:
    def __init__(self, intake: PhotoIntake) -> None:
        self.intake = intake

    async def handle(self, request: Request) -> Response:
        principal = _principal(request)
        if principal is None:
            return _error(
                ErrorCode.UNAUTHENTICATED,
                "Sign in first.",
                {**_NO_STORE, "WWW-Authenticate": "Bearer"},
            )
        upload_id = request.path_params["upload_id"]
        try:
            if request.method == "HEAD":
                session = await self.intake.upload_status(principal.user.id, upload_id)
                return Response(
                    status_code=200,
                    headers={
                        **_NO_STORE,
                        "Upload-Offset": str(session.received),
                        "Upload-Length": str(session.byte_size),
                        "Upload-Complete": "?1" if session.received == session.byte_size else "?0",
                    },
                )
            return await self._patch(request, principal, upload_id)
        except OffsetMismatch as exc:
            return error_response(exc, {**_NO_STORE, "Upload-Offset": str(exc.received)})

    async def _patch(self, request: Request, principal: Principal, upload_id: str) -> Response:
        try:
            offset = int(request.headers["upload-offset"])
            if offset < 0:
                raise ValueError
        except (KeyError, ValueError):
            return _error(ErrorCode.INVALID, "Send the chunk's start as a non-negative Upload-Offset header.")
        length = request.headers.get("content-length")
        try:
            new_offset = await self.intake.receive_chunk(
                principal.user.id,
                upload_id,
                offset,
                request.stream(),
                int(length) if length and length.isdigit() else None,
            )
        except ClientDisconnect:
            # Nobody is listening; the bytes that arrived are kept and HEAD tells the client later.
            return Response(status_code=400)
        return Response(status_code=204, headers={**_NO_STORE, "Upload-Offset": str(new_offset)})


class DerivativeEndpoint:
    """Display and thumbnail renditions: metadata-free JPEGs, content-addressed hence immutable."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    async def handle(self, request: Request) -> Response:
        derivative = await derivative_for(_principal(request), request.path_params["key"])
        if derivative is None:
            return _not_found()
        photo = derivative.photo
        etag = f'"{photo.sha256}-{derivative.size}"'
        headers = {
            **_SAFE_MEDIA_HEADERS,
            "ETag": etag,
            "Content-Disposition": f'inline; filename="{photo.id}-{derivative.size}.jpg"',
        }
        if photo.public:
            headers["Cache-Control"] = "public, max-age=31536000, immutable"
            headers["Cross-Origin-Resource-Policy"] = "cross-origin"
        else:
            headers["Cache-Control"] = "private, no-store"
            headers["Cross-Origin-Resource-Policy"] = "same-site"
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers=headers)
        return await _file_response(self.storage, derivative.key, "image/jpeg", headers)


class OriginalEndpoint:
    """The evidence original, exactly as uploaded (with its EXIF): staff only, never cached."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    async def handle(self, request: Request) -> Response:
        photo_id = request.path_params["photo_id"]
        found = await original_for(_principal(request), photo_id) if is_row_id(photo_id) else None
        if found is None:
            return _not_found()
        photo, key = found
        await audit.note_read(_principal(request), AccessKind.ORIGINAL_PHOTO, "photo", photo.id)
        headers = {
            **_SAFE_MEDIA_HEADERS,
            "Cache-Control": "private, no-store",
            "Cross-Origin-Resource-Policy": "same-site",
            "Content-Disposition": f'attachment; filename="{photo.id}-original.{photo.format}"',
        }
        return await _file_response(self.storage, key, _CONTENT_TYPES[photo.format], headers)


async def _file_response(storage: Storage, key: str, content_type: str, headers: dict[str, str]) -> Response:
    try:
        size = await storage.size(key)
    except FileNotFoundError:
        return _not_found()
    except StorageUnavailable:
        log.exception("photo store unavailable while serving %s", key)
        refusal = DomainError(ErrorCode.UNAVAILABLE, "The photo store cannot be reached; try again shortly.")
        return error_response(refusal, {**_NO_STORE, "Retry-After": "5"})
    return StreamingResponse(
        storage.read_chunks(key),
        media_type=content_type,
        headers={**headers, "Content-Length": str(size)},
    )
