"""HTTP routes for media that are not GraphQL: resumable upload chunks and photo serving.

Uploads speak tus 1.0 (core, creation, checksum, termination, expiration); a session is opened by
the `photoUploadStart` mutation or by a tus creation, and turned into a photo by `photoUploadFinish`:
    OPTIONS /uploads                          -> 204, Tus-Version, Tus-Extension, Tus-Max-Size, ...
    POST    /uploads, Upload-Length: n        -> 201, Location: the upload's URL
    HEAD    /uploads/{id}                     -> 200, Upload-Offset: bytes the server has
    PATCH   /uploads/{id}, Upload-Offset: n   -> 204, Upload-Offset: new offset (body = the next bytes)
    DELETE  /uploads/{id}                     -> 204, the upload and its bytes are gone
A HEAD or PATCH without Tus-Resumable is the app's own protocol from before tus (the same, minus the
tus header checks), so released apps keep working. Errors answer
`{"errors": [{"message", "extensions": {"code"}}]}`: 401 UNAUTHENTICATED, 404 NOT_FOUND (also for
another user's or an expired upload), 409 OFFSET_MISMATCH (with the current Upload-Offset), 412 (an
unsupported Tus-Resumable), 413 TOO_LARGE, 415 (a chunk not sent as application/offset+octet-stream),
460 HASH_MISMATCH (the chunk does not match its Upload-Checksum; nothing of it was kept).

Serving:
    GET /media/derivatives/ab/cd/<sha256>-<size>.jpg   display or thumb, for whoever may see the photo
    GET /media/photos/{id}/original                   the evidence original, staff only
"""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from email.utils import format_datetime

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from identity import audit
from identity.models import AccessKind
from identity.service import Principal
from kernel.database import is_row_id
from kernel.errors import DomainError, ErrorCode
from media.intake import ChecksumMismatch, ChunkChecksum, OffsetMismatch, PhotoIntake
from media.models import UploadSession
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


TUS_VERSION = "1.0.0"
TUS_EXTENSIONS = "creation,checksum,termination,expiration"
_TUS = {"Tus-Resumable": TUS_VERSION}
_OCTETS = "application/offset+octet-stream"
CHECKSUM_MISMATCH = 460  # tus checksum extension
_ALGORITHMS = ",".join(ChunkChecksum.ALGORITHMS)


def _error(
    code: ErrorCode, message: str, headers: dict[str, str] | None = None, status: int | None = None
) -> Response:
    return error_response(DomainError(code, message), headers or _NO_STORE, status)


def _expires(session: UploadSession) -> dict[str, str]:
    """Upload-Expires (tus expiration), in the HTTP date format; none once the upload became a photo."""
    if session.photo_id is not None:
        return {}
    expires: datetime = session.expires_at
    return {"Upload-Expires": format_datetime(expires.astimezone(UTC), usegmt=True)}


def _metadata(header: str) -> dict[str, str]:
    """Upload-Metadata: comma-separated `key base64(value)` pairs (a key may come without a value)."""
    pairs: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in header.split(","))):
        key, _, encoded = item.partition(" ")
        if not key or " " in encoded.strip() or key in pairs:
            raise ValueError(item)
        pairs[key] = base64.b64decode(encoded.strip(), validate=True).decode()
    return pairs


def _checksum(header: str) -> ChunkChecksum:
    """Upload-Checksum: `algorithm base64(digest)`."""
    algorithm, _, encoded = header.strip().partition(" ")
    return ChunkChecksum(algorithm.lower(), base64.b64decode(encoded.strip(), validate=True))


def _principal(request: Request) -> Principal | None:
    return principal_of(request)


_Action = Callable[[Request, Principal, dict[str, str]], Awaitable[Response]]


def _not_found() -> Response:
    return _error(ErrorCode.NOT_FOUND, "No such file.")


def media_routes(services: Services) -> list[BaseRoute]:
    intake = services.media
    assert intake is not None, "the media routes need Services.media"
    uploads = UploadEndpoint(intake)
    return [
        Route("/uploads", uploads.collection, methods=["OPTIONS", "POST"], name="uploads"),
        Route(
            "/uploads/{upload_id}",
            uploads.handle,
            methods=["OPTIONS", "HEAD", "PATCH", "DELETE"],
            name="upload",
        ),
        Route(
            "/media/photos/{photo_id:int}/original", OriginalEndpoint(intake.storage).handle, methods=["GET"]
        ),
        Route("/media/{key:path}", DerivativeEndpoint(intake.storage).handle, methods=["GET"], name="media"),
    ]


class UploadEndpoint:
    def __init__(self, intake: PhotoIntake) -> None:
        self.intake = intake

    def _discovery(self) -> Response:
        """tus OPTIONS: what this server speaks; no authentication needed to ask."""
        return Response(
            status_code=204,
            headers={
                **_TUS,
                "Tus-Version": TUS_VERSION,
                "Tus-Extension": TUS_EXTENSIONS,
                "Tus-Max-Size": str(self.intake.config.max_bytes),
                "Tus-Checksum-Algorithm": _ALGORITHMS,
            },
        )

    async def collection(self, request: Request) -> Response:
        if request.method == "OPTIONS":
            return self._discovery()
        return await self._guarded(request, self._create, tus_only=True)

    async def handle(self, request: Request) -> Response:
        if request.method == "OPTIONS":
            return self._discovery()
        return await self._guarded(request, self._on_upload, tus_only=request.method == "DELETE")

    async def _guarded(self, request: Request, action: _Action, *, tus_only: bool) -> Response:
        """The checks every upload request passes: the tus version (required on tus-only requests;
        the app's older HEAD and PATCH come without it) and a signed-in caller."""
        version = request.headers.get("tus-resumable")
        if (version is None and tus_only) or (version is not None and version != TUS_VERSION):
            return _error(
                ErrorCode.INVALID,
                f"Send Tus-Resumable: {TUS_VERSION}.",
                {**_NO_STORE, **_TUS, "Tus-Version": TUS_VERSION},
                status=412,
            )
        headers = {**_NO_STORE, **_TUS} if version else _NO_STORE
        principal = _principal(request)
        if principal is None:
            return _error(
                ErrorCode.UNAUTHENTICATED, "Sign in first.", {**headers, "WWW-Authenticate": "Bearer"}
            )
        try:
            return await action(request, principal, headers)
        except ChecksumMismatch as exc:
            return error_response(exc, {**headers, "Upload-Offset": str(exc.received)}, CHECKSUM_MISMATCH)
        except OffsetMismatch as exc:
            return error_response(exc, {**headers, "Upload-Offset": str(exc.received)})
        except DomainError as exc:
            return error_response(exc, headers)

    async def _create(self, request: Request, principal: Principal, headers: dict[str, str]) -> Response:
        """tus creation: an upload session of the announced length, within the GraphQL start's limits."""
        try:
            length = int(request.headers["upload-length"])
            if length < 0:
                raise ValueError
        except (KeyError, ValueError):
            return _error(ErrorCode.INVALID, "Send the file's size as Upload-Length.", headers)
        try:
            metadata = _metadata(request.headers.get("upload-metadata", ""))
        except (ValueError, binascii.Error):
            return _error(ErrorCode.INVALID, "Upload-Metadata is `key base64(value)` pairs.", headers)
        session = await self.intake.create_upload(principal.user.id, length, metadata.get("sha256"))
        location = str(request.url_for("upload", upload_id=str(session.id)))
        return Response(status_code=201, headers={**headers, **_expires(session), "Location": location})

    async def _on_upload(self, request: Request, principal: Principal, headers: dict[str, str]) -> Response:
        upload_id = request.path_params["upload_id"]
        if request.method == "DELETE":
            await self.intake.terminate_upload(principal.user.id, upload_id)
            return Response(status_code=204, headers=headers)
        if request.method == "PATCH":
            return await self._patch(request, principal, upload_id, headers)
        session = await self.intake.upload_status(principal.user.id, upload_id)
        return Response(
            status_code=200,
            headers={
                **headers,
                **_expires(session),
                "Upload-Offset": str(session.received),
                "Upload-Length": str(session.byte_size),
                "Upload-Complete": "?1" if session.received == session.byte_size else "?0",
            },
        )

    async def _patch(
        self, request: Request, principal: Principal, upload_id: str, headers: dict[str, str]
    ) -> Response:
        tus = "Tus-Resumable" in headers
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if tus and content_type != _OCTETS:
            return _error(ErrorCode.INVALID, f"Send the chunk as {_OCTETS}.", headers, status=415)
        try:
            offset = int(request.headers["upload-offset"])
            if offset < 0:
                raise ValueError
        except (KeyError, ValueError):
            return _error(
                ErrorCode.INVALID, "Send the chunk's start as a non-negative Upload-Offset header.", headers
            )
        try:
            checksum = (
                _checksum(request.headers["upload-checksum"])
                if "upload-checksum" in request.headers
                else None
            )
        except (ValueError, binascii.Error):
            return _error(
                ErrorCode.INVALID,
                f"Upload-Checksum is `algorithm base64(digest)`; algorithms: {_ALGORITHMS}.",
                headers,
            )
        length = request.headers.get("content-length")
        try:
            new_offset, session = await self.intake.receive_chunk(
                principal.user.id,
                upload_id,
                offset,
                request.stream(),
                int(length) if length and length.isdigit() else None,
                checksum,
            )
        except ClientDisconnect:
            # Nobody is listening; the bytes that arrived are kept and HEAD tells the client later.
            return Response(status_code=400)
        return Response(
            status_code=204, headers={**headers, **_expires(session), "Upload-Offset": str(new_offset)}
        )


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
