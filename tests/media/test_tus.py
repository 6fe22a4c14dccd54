"""The upload resource speaks tus 1.0 (core, creation, checksum, termination, expiration): every status
a tus client relies on, through HTTP as a client sends it; the GraphQL finish turns the upload into a photo."""

from __future__ import annotations

import asyncio
import base64
import hashlib
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

import httpx
import pytest

from media.models import Photo, UploadSession
from tests.graphql_client import new_resident
from tests.media.phone import asgi_patch_then_drop, auth, finish, jpeg, sha256

TUS = {"Tus-Resumable": "1.0.0"}
OCTETS = {**TUS, "Content-Type": "application/offset+octet-stream"}


def metadata(**pairs: str) -> str:
    return ",".join(f"{key} {base64.b64encode(value.encode()).decode()}" for key, value in pairs.items())


def checksum(algorithm: str, data: bytes) -> str:
    return f"{algorithm} {base64.b64encode(hashlib.new(algorithm, data).digest()).decode()}"


async def create(client: httpx.AsyncClient, token: str | None, length: int, **headers: str) -> httpx.Response:
    sent = {**TUS, **auth(token), "Upload-Length": str(length), **headers}
    return await client.post("/uploads", headers=sent)


async def send(
    client: httpx.AsyncClient, token: str | None, url: str, offset: int, body: bytes, **headers: str
) -> httpx.Response:
    return await client.patch(
        url, content=body, headers={**OCTETS, **auth(token), "Upload-Offset": str(offset), **headers}
    )


async def offset_of(client: httpx.AsyncClient, token: str, url: str) -> int:
    response = await client.head(url, headers={**TUS, **auth(token)})
    assert response.status_code == 200, response.text
    return int(response.headers["upload-offset"])


@pytest.fixture
async def resident(client) -> str:
    return await new_resident(client)


async def test_options_tells_what_the_server_speaks_without_signing_in(client):
    for path in ("/uploads", "/uploads/6f1c6f3e-0000-4000-8000-000000000001"):
        response = await client.options(path)
        assert response.status_code == 204
        assert response.headers["tus-version"] == "1.0.0"
        assert response.headers["tus-extension"] == "creation,checksum,termination,expiration"
        assert response.headers["tus-max-size"] == str(20 * 1024 * 1024)
        assert response.headers["tus-checksum-algorithm"] == "sha1,md5,sha256"


async def test_a_tus_upload_in_chunks_becomes_a_photo_through_the_graphql_finish(client, resident):
    data = jpeg()
    created = await create(
        client,
        resident,
        len(data),
        **{"Upload-Metadata": metadata(filename="IMG_1.jpg", filetype="image/jpeg")},
    )
    assert created.status_code == 201, created.text
    assert created.headers["tus-resumable"] == "1.0.0"
    url = created.headers["location"]
    assert url.startswith("http://testserver/uploads/")
    expires = parsedate_to_datetime(created.headers["upload-expires"])
    assert timedelta(hours=23) < expires - datetime.now(UTC) <= timedelta(hours=24)

    head = await client.head(url, headers={**TUS, **auth(resident)})
    assert head.status_code == 200
    assert (head.headers["upload-offset"], head.headers["upload-length"]) == ("0", str(len(data)))
    assert head.headers["cache-control"] == "no-store"
    size = 16 * 1024
    for offset in range(0, len(data), size):
        chunk = data[offset : offset + size]
        response = await send(
            client, resident, url, offset, chunk, **{"Upload-Checksum": checksum("sha1", chunk)}
        )
        assert response.status_code == 204, response.text
        assert response.headers["upload-offset"] == str(offset + len(chunk))
        assert response.headers["tus-resumable"] == "1.0.0" and "upload-expires" in response.headers

    payload = await finish(client, resident, url.rsplit("/", 1)[1])
    assert payload["userErrors"] == []
    assert (await Photo.get(sha256=sha256(data))).byte_size == len(data)
    photo_url = payload["photo"]["urls"]["display"]
    assert (await client.get(photo_url, headers=auth(resident))).status_code == 200


async def test_a_sha256_in_the_metadata_is_checked_at_the_finish(client, resident):
    data = jpeg()
    created = await create(client, resident, len(data), **{"Upload-Metadata": metadata(sha256="0" * 64)})
    url = created.headers["location"]
    assert (await send(client, resident, url, 0, data)).status_code == 204
    payload = await finish(client, resident, url.rsplit("/", 1)[1])
    assert [e["code"] for e in payload["userErrors"]] == ["HASH_MISMATCH"]


async def test_an_interrupted_patch_is_resumed_from_the_offset_head_reports(client, resident):
    data = jpeg()
    url = (await create(client, resident, len(data))).headers["location"]
    path = "/" + url.split("/", 3)[3]
    half = len(data) // 2
    await asgi_patch_then_drop(client._transport.app, resident, path, 0, [data[:1000], data[1000:half]])
    assert await offset_of(client, resident, url) == half
    assert (await send(client, resident, url, half, data[half:])).status_code == 204
    assert (await finish(client, resident, url.rsplit("/", 1)[1]))["userErrors"] == []


async def test_a_checksummed_chunk_cut_off_midway_keeps_nothing_of_it(client, resident):
    data = jpeg()
    url = (await create(client, resident, len(data))).headers["location"]
    path = "/" + url.split("/", 3)[3]
    headers = {**OCTETS, "Upload-Checksum": checksum("sha1", data)}
    await asgi_patch_then_drop(
        client._transport.app, resident, path, 0, [data[:1000], data[1000:5000]], **headers
    )
    assert await offset_of(client, resident, url) == 0  # a partial chunk cannot be verified
    assert (
        await send(client, resident, url, 0, data, **{"Upload-Checksum": checksum("sha1", data)})
    ).status_code == 204


async def test_a_wrong_offset_is_409_with_the_servers_offset(client, resident):
    data = jpeg()
    url = (await create(client, resident, len(data))).headers["location"]
    assert (await send(client, resident, url, 0, data[:100])).status_code == 204
    response = await send(client, resident, url, 50, data[50:150])
    assert (response.status_code, response.headers["upload-offset"]) == (409, "100")


async def test_a_chunk_of_another_content_type_is_415_and_changes_nothing(client, resident):
    url = (await create(client, resident, 100)).headers["location"]
    response = await send(client, resident, url, 0, b"x" * 10, **{"Content-Type": "application/octet-stream"})
    assert response.status_code == 415
    assert await offset_of(client, resident, url) == 0


async def test_a_chunk_that_does_not_match_its_checksum_is_460_and_nothing_is_kept(
    client, settings, resident
):
    data = jpeg()
    url = (await create(client, resident, len(data))).headers["location"]
    assert (
        await send(client, resident, url, 0, data[:100], **{"Upload-Checksum": checksum("md5", data[:100])})
    ).status_code == 204
    wrong = await send(
        client, resident, url, 100, data[100:5000], **{"Upload-Checksum": checksum("sha1", b"other")}
    )
    assert (wrong.status_code, wrong.headers["upload-offset"]) == (460, "100")
    assert await offset_of(client, resident, url) == 100
    [part] = [p for p in settings.media_root.rglob("session-*")]
    assert part.stat().st_size == 100
    for bad in ("crc32 AAAA", "sha1 not-base64!"):
        response = await send(client, resident, url, 100, data[100:200], **{"Upload-Checksum": bad})
        assert response.status_code == 400
    assert (
        await send(
            client, resident, url, 100, data[100:], **{"Upload-Checksum": checksum("sha256", data[100:])}
        )
    ).status_code == 204


async def test_a_missing_or_unsupported_tus_version_is_412(client, resident):
    no_version = await client.post("/uploads", headers={**auth(resident), "Upload-Length": "100"})
    assert no_version.status_code == 412 and no_version.headers["tus-version"] == "1.0.0"
    url = (await create(client, resident, 100)).headers["location"]
    for headers in ({"Tus-Resumable": "0.2.2"}, {"Tus-Resumable": "2.0.0"}):
        response = await client.patch(
            url, content=b"x", headers={**OCTETS, **auth(resident), "Upload-Offset": "0", **headers}
        )
        assert response.status_code == 412
    assert (await client.delete(url, headers=auth(resident))).status_code == 412
    assert await offset_of(client, resident, url) == 0


async def test_creation_needs_a_signed_in_caller_and_a_valid_length_and_metadata(client, resident):
    assert (await create(client, None, 100)).status_code == 401
    for length in ("", "-1", "ten"):
        assert (await create(client, resident, 0, **{"Upload-Length": length})).status_code == 400
    assert (await create(client, resident, 0)).status_code == 400  # an empty file is not a photo
    assert (
        await create(client, resident, 100, **{"Upload-Metadata": "filename not base64!"})
    ).status_code == 400
    assert (
        await create(client, resident, 100, **{"Upload-Metadata": metadata(sha256="xyz")})
    ).status_code == 400
    assert await UploadSession.all().count() == 0


async def test_an_oversize_creation_is_refused_like_the_graphql_start(client, resident):
    response = await create(client, resident, 20 * 1024 * 1024 + 1)
    assert response.status_code == 413
    assert response.json()["errors"][0]["extensions"]["code"] == "TOO_LARGE"
    assert await UploadSession.all().count() == 0


async def test_a_chunk_beyond_the_length_ends_the_upload(client, resident):
    url = (await create(client, resident, 100)).headers["location"]
    assert (await send(client, resident, url, 0, b"x" * 101)).status_code == 413
    assert (await client.head(url, headers={**TUS, **auth(resident)})).status_code == 404


async def test_another_users_upload_answers_like_a_missing_one(client, resident):
    url = (await create(client, resident, 100)).headers["location"]
    stranger = await new_resident(client)
    missing = url.rsplit("/", 1)[0] + "/6f1c6f3e-0000-4000-8000-000000000001"
    for target in (url, missing):
        head = await client.head(target, headers={**TUS, **auth(stranger)})
        patch = await send(client, stranger, target, 0, b"x")
        delete = await client.delete(target, headers={**TUS, **auth(stranger)})
        assert (head.status_code, patch.status_code, delete.status_code) == (404, 404, 404)
        assert patch.json() == delete.json()
    assert await offset_of(client, resident, url) == 0


async def test_termination_removes_the_upload_and_its_bytes(client, settings, resident):
    url = (await create(client, resident, 100)).headers["location"]
    assert (await send(client, resident, url, 0, b"x" * 10)).status_code == 204
    response = await client.delete(url, headers={**TUS, **auth(resident)})
    assert response.status_code == 204
    assert (await client.head(url, headers={**TUS, **auth(resident)})).status_code == 404
    assert (await client.delete(url, headers={**TUS, **auth(resident)})).status_code == 404
    assert list(settings.media_root.rglob("session-*")) == []
    assert await UploadSession.all().count() == 0


async def test_an_expired_upload_is_gone(db, make_app_client):
    async with make_app_client(upload_expiry_seconds=1) as client:
        resident = await new_resident(client)
        created = await create(client, resident, 100)
        url = created.headers["location"]
        expires = parsedate_to_datetime(created.headers["upload-expires"])
        assert expires - datetime.now(UTC) <= timedelta(seconds=1)
        await asyncio.sleep(1.1)
        assert (await client.head(url, headers={**TUS, **auth(resident)})).status_code == 404
        assert (await send(client, resident, url, 0, b"x" * 10)).status_code == 404
        payload = await finish(client, resident, url.rsplit("/", 1)[1])
        assert [e["code"] for e in payload["userErrors"]] == ["NOT_FOUND"]


async def test_a_browser_may_read_the_tus_headers(db, make_app_client):
    async with make_app_client(allowed_origins=("https://app.example",)) as client:
        resident = await new_resident(client)
        await _browser_reads_tus_headers(client, resident)


async def _browser_reads_tus_headers(client: httpx.AsyncClient, resident: str) -> None:
    preflight = await client.options(
        "/uploads",
        headers={
            "Origin": "https://app.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "tus-resumable,upload-length,upload-metadata,authorization",
        },
    )
    assert preflight.status_code == 200, preflight.text
    created = await create(client, resident, 100, Origin="https://app.example")
    exposed = created.headers["access-control-expose-headers"].lower()
    for header in ("location", "upload-offset", "upload-expires", "tus-resumable"):
        assert header in exposed
