"""A simulated phone: photos made here (no binary fixtures) and the upload calls an app would make."""

from __future__ import annotations

import hashlib
import io
import json
import struct
import zlib
from collections.abc import AsyncIterator, Sequence
from typing import Any

import httpx
from PIL import ExifTags, Image
from PIL.TiffImagePlugin import IFDRational
from starlette.types import ASGIApp, Message

from tests.graphql_client import gql_data

PHOTO_FIELDS = "id width height capturedAt public urls { display thumb } exifLocation { latitude longitude } camera { make model } originalUrl"
USER_ERRORS = "userErrors { code field message }"
START = f"""mutation($input: PhotoUploadStartInput!) {{
  photoUploadStart(input: $input) {{ upload {{ id url offset byteSize expiresAt }} photo {{ {PHOTO_FIELDS} }} {USER_ERRORS} }} }}"""
FINISH = f"""mutation($input: PhotoUploadFinishInput!) {{
  photoUploadFinish(input: $input) {{ photo {{ {PHOTO_FIELDS} }} {USER_ERRORS} }} }}"""
UPLOAD = f"""mutation($input: PhotoUploadInput!) {{
  photoUpload(input: $input) {{ photo {{ {PHOTO_FIELDS} }} {USER_ERRORS} }} }}"""
NODE = f"query($id: ID!) {{ node(id: $id) {{ ... on Photo {{ {PHOTO_FIELDS} }} }} }}"

# Hangzhou, West Lake; 2026-05-01 09:30 at UTC+8
LATITUDE, LONGITUDE = 30.2456, 120.1412


def _dms(value: float) -> tuple[IFDRational, IFDRational, IFDRational]:
    degrees = int(value)
    minutes = int((value - degrees) * 60)
    seconds = round(((value - degrees) * 60 - minutes) * 60 * 10000)
    return IFDRational(degrees, 1), IFDRational(minutes, 1), IFDRational(seconds, 10000)


def camera_exif(orientation: int = 1) -> bytes:
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "PhoneCo"
    exif[ExifTags.Base.Model] = "P-12"
    exif[ExifTags.Base.Orientation] = orientation
    exif[ExifTags.IFD.Exif] = {
        ExifTags.Base.DateTimeOriginal: "2026:05:01 09:30:00",
        ExifTags.Base.OffsetTimeOriginal: "+08:00",
    }
    exif[ExifTags.IFD.GPSInfo] = {
        ExifTags.GPS.GPSLatitudeRef: "N",
        ExifTags.GPS.GPSLatitude: _dms(LATITUDE),
        ExifTags.GPS.GPSLongitudeRef: "E",
        ExifTags.GPS.GPSLongitude: _dms(LONGITUDE),
    }
    return exif.tobytes()


def picture(size: tuple[int, int] = (1200, 900), seed: int = 40) -> Image.Image:
    return Image.effect_noise(size, seed).convert("RGB")


def jpeg(size: tuple[int, int] = (1200, 900), seed: int = 40, exif: bool = True) -> bytes:
    out = io.BytesIO()
    picture(size, seed).save(out, "JPEG", quality=85, **({"exif": camera_exif()} if exif else {}))
    return out.getvalue()


def heic(size: tuple[int, int] = (640, 480)) -> bytes:
    out = io.BytesIO()
    picture(size, 60).save(out, "HEIF", quality=50, exif=camera_exif(), enc_params={"preset": "ultrafast"})
    return out.getvalue()


def png_header(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims any size."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")
    )


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def auth(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


async def start(
    client: httpx.AsyncClient, token: str, data: bytes, *, digest: str | None = None, **extra: Any
) -> dict[str, Any]:
    variables = {"input": {"byteSize": len(data), "sha256": digest or sha256(data), **extra}}
    return (await gql_data(client, START, variables, token))["photoUploadStart"]


async def finish(client: httpx.AsyncClient, token: str, upload_id: str) -> dict[str, Any]:
    return (await gql_data(client, FINISH, {"input": {"uploadId": upload_id}}, token))["photoUploadFinish"]


async def patch(
    client: httpx.AsyncClient, token: str | None, url: str, offset: int, body: bytes | AsyncIterator[bytes]
) -> httpx.Response:
    headers = {**auth(token), "Upload-Offset": str(offset), "Content-Type": "application/offset+octet-stream"}
    return await client.patch(url, content=body, headers=headers)


async def head(client: httpx.AsyncClient, token: str | None, url: str) -> httpx.Response:
    return await client.head(url, headers=auth(token))


async def upload_resumable(
    client: httpx.AsyncClient, token: str, data: bytes, chunk_size: int = 256 * 1024
) -> dict[str, Any]:
    """Start, send every chunk, finish: the finish payload."""
    started = await start(client, token, data)
    assert started["userErrors"] == [], started
    if started["photo"] is not None:
        return {"photo": started["photo"], "userErrors": []}
    upload = started["upload"]
    for offset in range(0, len(data), chunk_size):
        response = await patch(client, token, upload["url"], offset, data[offset : offset + chunk_size])
        assert response.status_code == 204, response.text
    return await finish(client, token, upload["id"])


async def upload_simple(
    client: httpx.AsyncClient, token: str | None, data: bytes, filename: str = "photo.jpg"
) -> dict[str, Any]:
    """The multipart GraphQL upload: the photoUpload payload."""
    operations = {"query": UPLOAD, "variables": {"input": {"file": None}}}
    response = await client.post(
        "/graphql",
        data={"operations": json.dumps(operations), "map": json.dumps({"0": ["variables.input.file"]})},
        files={"0": (filename, data, "image/jpeg")},
        headers=auth(token),
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert not body.get("errors"), body
    return body["data"]["photoUpload"]


async def asgi_patch_then_drop(
    app: ASGIApp, token: str, path: str, offset: int, chunks: Sequence[bytes], **headers: str
) -> list[Message]:
    """A PATCH whose connection drops after `chunks` arrived, as uvicorn reports it to the app:
    the body messages say more is coming, then `http.disconnect`."""
    messages: list[Message] = [{"type": "http.request", "body": c, "more_body": True} for c in chunks]
    messages.append({"type": "http.disconnect"})
    sent: list[Message] = []

    async def receive() -> Message:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "PATCH",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"testserver"),
            (b"authorization", f"Bearer {token}".encode()),
            (b"upload-offset", str(offset).encode()),
            (b"content-length", str(sum(map(len, chunks)) * 2).encode()),
            *((name.lower().encode(), value.encode()) for name, value in headers.items()),
        ],
        "client": ("127.0.0.1", 50001),
        "server": ("testserver", 80),
    }
    await app(scope, receive, send)
    return sent
