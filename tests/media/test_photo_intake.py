"""Photo intake through HTTP, as a phone does it: every bad input of the issue, resumable uploads,
deduplication, and that a refusal leaves no file and no row behind."""

from __future__ import annotations

import asyncio
import io
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from identity.models import Role
from media.models import Photo, UploadSession
from server.settings import Settings
from tests.graphql_client import gql_data, new_account, new_resident
from tests.media.phone import (
    UPLOAD,
    asgi_patch_then_drop,
    finish,
    head,
    heic,
    jpeg,
    patch,
    png_header,
    sha256,
    start,
    upload_resumable,
    upload_simple,
)


def stored_files(settings: Settings) -> list[Path]:
    """Every file under the media root (originals, derivatives and temporary uploads)."""
    return sorted(p for p in settings.media_root.rglob("*") if p.is_file())


async def assert_nothing_left(settings: Settings) -> None:
    assert stored_files(settings) == []
    assert await Photo.all().count() == 0
    assert await UploadSession.all().count() == 0


def codes(payload: dict) -> list[str]:
    return [error["code"] for error in payload["userErrors"]]


@pytest.fixture
async def resident(client) -> str:
    return await new_resident(client)


# --- bad input, through both upload paths ----------------------------------------------------------


def _truncated_jpeg() -> bytes:
    whole = jpeg()
    return whole[: len(whole) // 2]


BAD_FILES = {
    "one byte": (b"\xff", "UNSUPPORTED_FORMAT"),
    "text named photo.jpg": (b"Hello, this is not a photo.\n", "UNSUPPORTED_FORMAT"),
    "PNG header claiming 20000x20000": (png_header(20000, 20000), "TOO_MANY_PIXELS"),
    "truncated JPEG": (_truncated_jpeg(), "CORRUPT"),
}


@pytest.mark.parametrize("name", BAD_FILES)
async def test_bad_files_are_refused_by_content_over_the_simple_upload(client, settings, resident, name):
    data, code = BAD_FILES[name]
    payload = await upload_simple(client, resident, data, filename="photo.jpg")
    assert payload["photo"] is None
    assert codes(payload) == [code]
    assert payload["userErrors"][0]["field"] == ["input", "file"]
    await assert_nothing_left(settings)


@pytest.mark.parametrize("name", BAD_FILES)
async def test_bad_files_are_refused_by_content_over_the_resumable_upload(client, settings, resident, name):
    data, code = BAD_FILES[name]
    started = await start(client, resident, data)
    upload = started["upload"]
    assert (await patch(client, resident, upload["url"], 0, data)).status_code == 204
    payload = await finish(client, resident, upload["id"])
    assert payload["photo"] is None and codes(payload) == [code]
    assert payload["userErrors"][0]["field"] == ["input", "uploadId"]
    assert (await head(client, resident, upload["url"])).status_code == 404
    await assert_nothing_left(settings)


async def test_zero_bytes_are_refused_on_both_paths(client, settings, resident):
    assert codes(await upload_simple(client, resident, b"")) == ["UNSUPPORTED_FORMAT"]
    started = await start(client, resident, b"")
    assert started["upload"] is None and codes(started) == ["UNSUPPORTED_FORMAT"]
    assert started["userErrors"][0]["field"] == ["input", "byteSize"]
    await assert_nothing_left(settings)


async def test_a_heic_photo_is_accepted(client, resident):
    data = heic()
    payload = await upload_simple(client, resident, data, filename="IMG_0001.HEIC")
    assert payload["userErrors"] == []
    photo = await Photo.get(sha256=sha256(data))
    assert (photo.format, photo.width, photo.height) == ("heic", 640, 480)
    assert payload["photo"]["capturedAt"] == "2026-05-01T01:30:00+00:00"


async def test_a_jpeg_with_a_zip_appended_is_accepted_and_only_clean_renditions_are_served(client, resident):
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as payload:
        payload.writestr("evil.sh", "rm -rf /\n")
    polyglot = jpeg() + archive.getvalue()
    photo = (await upload_simple(client, resident, polyglot))["photo"]
    for url in photo["urls"].values():
        served = await client.get(url, headers={"Authorization": f"Bearer {resident}"})
        assert served.status_code == 200
        assert b"PK\x03\x04" not in served.content and b"evil.sh" not in served.content


async def test_a_client_file_name_never_reaches_the_file_system(client, settings, resident):
    payload = await upload_simple(client, resident, jpeg(), filename="../../etc/passwd")
    assert payload["userErrors"] == []
    files = stored_files(settings)
    assert len(files) == 3  # original + display + thumb, all content-addressed
    assert all(settings.media_root in f.parents and "passwd" not in f.name for f in files)


async def test_a_60_mb_upload_is_refused_at_start_and_while_streaming(client, settings, resident):
    sixty_mb = 60 * 1024 * 1024
    started = await client.post(
        "/graphql",
        json={"query": START_QUERY, "variables": {"input": {"byteSize": sixty_mb, "sha256": "ab" * 32}}},
        headers={"Authorization": f"Bearer {resident}"},
    )
    assert codes(started.json()["data"]["photoUploadStart"]) == ["TOO_LARGE"]

    # A client that announced 1 MiB and then streams 60 MB (without a Content-Length) is cut off
    # after the announced size, long before the rest of the body is read.
    announced = jpeg()
    upload = (await start(client, resident, announced))["upload"]
    sent = 0

    async def sixty_megabytes() -> AsyncIterator[bytes]:
        nonlocal sent
        block = b"\xff" * (256 * 1024)
        for _ in range(sixty_mb // len(block)):
            sent += len(block)
            yield block

    response = await patch(client, resident, upload["url"], 0, sixty_megabytes())
    assert response.status_code == 413
    assert response.json()["errors"][0]["extensions"]["code"] == "TOO_LARGE"
    assert sent <= len(announced) + 256 * 1024
    await assert_nothing_left(settings)


async def test_a_60_mb_simple_upload_is_refused_and_leaves_nothing(client, settings, resident):
    response = await client.post(
        "/graphql",
        data={"operations": '{"query": "mutation { __typename }"}', "map": "{}"},
        files={"0": ("big.jpg", b"\xff" * (60 * 1024 * 1024), "image/jpeg")},
        headers={"Authorization": f"Bearer {resident}"},
    )
    assert response.status_code == 413
    await assert_nothing_left(settings)


async def test_the_byte_limit_is_a_setting(db, make_app_client, tmp_path):
    async with make_app_client(photo_max_bytes=10_000) as client:
        token = await new_resident(client)
        assert codes(await upload_simple(client, token, jpeg())) == ["TOO_LARGE"]
        assert codes(await start(client, token, jpeg())) == ["TOO_LARGE"]


async def test_the_pixel_limit_is_a_setting(db, make_app_client):
    async with make_app_client(photo_max_pixels=1000 * 900) as client:
        token = await new_resident(client)
        assert codes(await upload_simple(client, token, jpeg((1200, 900)))) == ["TOO_MANY_PIXELS"]
        assert (await upload_simple(client, token, jpeg((1000, 900))))["userErrors"] == []


async def test_a_json_value_instead_of_a_file_is_invalid(client, resident):
    data = await gql_data(client, UPLOAD, {"input": {"file": "not a file"}}, resident)
    assert codes(data["photoUpload"]) == ["INVALID"]


async def test_uploading_needs_a_signed_in_caller(client):
    started = await start(client, None, jpeg())  # type: ignore[arg-type]
    assert codes(started) == ["UNAUTHENTICATED"]


# --- resumable uploads ---------------------------------------------------------------------------------


START_QUERY = "mutation($input: PhotoUploadStartInput!) { photoUploadStart(input: $input) { upload { id } userErrors { code field message } } }"


async def test_an_upload_cut_off_halfway_is_resumed_from_what_the_server_kept(client, settings, resident):
    data = jpeg()
    upload = (await start(client, resident, data))["upload"]
    assert upload["offset"] == 0 and upload["byteSize"] == len(data)
    path = "/" + upload["url"].split("/", 3)[3]
    half = len(data) // 2
    sent = await asgi_patch_then_drop(
        client._transport.app, resident, path, 0, [data[:1000], data[1000:half]]
    )
    assert not any(m.get("status") == 204 for m in sent)  # nobody told the phone it worked

    status = await head(client, resident, upload["url"])
    assert status.status_code == 200
    assert status.headers["upload-offset"] == str(half)
    assert status.headers["upload-length"] == str(len(data))
    assert status.headers["cache-control"] == "no-store"
    response = await patch(client, resident, upload["url"], half, data[half:])
    assert (response.status_code, response.headers["upload-offset"]) == (204, str(len(data)))
    payload = await finish(client, resident, upload["id"])
    assert payload["userErrors"] == []
    photo = await Photo.get(sha256=sha256(data))
    original = (
        settings.media_root / "originals" / photo.sha256[:2] / photo.sha256[2:4] / f"{photo.sha256}.jpg"
    )
    assert original.read_bytes() == data


async def test_a_chunk_with_the_wrong_offset_gets_409_and_the_current_offset(client, resident):
    data = jpeg()
    upload = (await start(client, resident, data))["upload"]
    assert (await patch(client, resident, upload["url"], 0, data[:5000])).status_code == 204
    for wrong in (0, 4000, 6000):
        response = await patch(client, resident, upload["url"], wrong, data[wrong : wrong + 100])
        assert response.status_code == 409
        assert response.headers["upload-offset"] == "5000"
        assert response.json()["errors"][0]["extensions"]["code"] == "OFFSET_MISMATCH"
    assert (await head(client, resident, upload["url"])).headers["upload-offset"] == "5000"


async def test_a_missing_or_bad_offset_header_is_a_400(client, resident):
    upload = (await start(client, resident, jpeg()))["upload"]
    for headers in ({}, {"Upload-Offset": "-1"}, {"Upload-Offset": "abc"}):
        response = await client.patch(
            upload["url"], content=b"x", headers={"Authorization": f"Bearer {resident}", **headers}
        )
        assert response.status_code == 400
        assert response.json()["errors"][0]["extensions"]["code"] == "INVALID"


async def test_a_finished_upload_whose_hash_does_not_match_is_refused_and_removed(client, settings, resident):
    data = jpeg()
    upload = (await start(client, resident, data, digest=sha256(b"other bytes")))["upload"]
    assert (await patch(client, resident, upload["url"], 0, data)).status_code == 204
    payload = await finish(client, resident, upload["id"])
    assert payload["photo"] is None and codes(payload) == ["HASH_MISMATCH"]
    assert (await head(client, resident, upload["url"])).status_code == 404
    await assert_nothing_left(settings)


async def test_finishing_before_all_bytes_arrived_says_so_and_keeps_the_upload(client, resident):
    data = jpeg()
    upload = (await start(client, resident, data))["upload"]
    await patch(client, resident, upload["url"], 0, data[:100])
    assert codes(await finish(client, resident, upload["id"])) == ["IN_PROGRESS"]
    assert (await head(client, resident, upload["url"])).headers["upload-offset"] == "100"


async def test_finishing_twice_returns_the_same_photo(client, resident):
    data = jpeg()
    upload = (await start(client, resident, data))["upload"]
    await patch(client, resident, upload["url"], 0, data)
    first, again, at_once = await asyncio.gather(
        finish(client, resident, upload["id"]),
        finish(client, resident, upload["id"]),
        finish(client, resident, upload["id"]),
    )
    later = await finish(client, resident, upload["id"])
    assert {first["photo"]["id"], again["photo"]["id"], at_once["photo"]["id"], later["photo"]["id"]} == {
        first["photo"]["id"]
    }
    assert await Photo.all().count() == 1


async def test_another_users_upload_is_not_found(client, resident):
    data = jpeg()
    upload = (await start(client, resident, data))["upload"]
    stranger = await new_resident(client)
    assert (await head(client, stranger, upload["url"])).status_code == 404
    response = await patch(client, stranger, upload["url"], 0, data)
    assert response.status_code == 404 and response.json()["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    assert codes(await finish(client, stranger, upload["id"])) == ["NOT_FOUND"]
    assert (await head(client, resident, upload["url"])).headers["upload-offset"] == "0"
    assert (await head(client, None, upload["url"])).status_code == 401
    bogus = upload["url"].rsplit("/", 1)[0] + "/not-a-uuid"
    assert (await head(client, resident, bogus)).status_code == 404


async def test_a_retried_start_with_the_same_client_id_returns_the_same_upload(client, resident):
    data = jpeg()
    first = await start(client, resident, data, clientId="photo-1")
    again = await start(client, resident, data, clientId="photo-1")
    assert first["upload"]["id"] == again["upload"]["id"]
    other = await start(client, resident, jpeg(seed=41), clientId="photo-1")
    assert codes(other) == ["CONFLICT"]


async def test_start_validates_its_input(client, resident):
    bad_hash = await start(client, resident, jpeg(), digest="xyz")
    assert codes(bad_hash) == ["INVALID"] and bad_hash["userErrors"][0]["field"] == ["input", "sha256"]
    bad_client_id = await start(client, resident, jpeg(), clientId="../../etc")
    assert codes(bad_client_id) == ["INVALID"]
    assert await UploadSession.all().count() == 0


# --- deduplication ----------------------------------------------------------------------------------


async def test_the_same_photo_uploaded_twice_at_once_is_one_photo_and_one_set_of_files(
    client, settings, resident
):
    data = jpeg()
    resumable = await asyncio.gather(*(upload_resumable(client, resident, data) for _ in range(2)))
    simple = await asyncio.gather(*(upload_simple(client, resident, data) for _ in range(2)))
    ids = {payload["photo"]["id"] for payload in [*resumable, *simple]}
    assert len(ids) == 1
    assert await Photo.all().count() == 1
    assert len([f for f in stored_files(settings) if "uploads" not in f.parts]) == 3
    assert [f for f in stored_files(settings) if "uploads" in f.parts] == []


async def test_starting_an_upload_of_bytes_you_already_have_returns_the_photo_at_once(client, resident):
    data = jpeg()
    uploaded = (await upload_simple(client, resident, data))["photo"]
    started = await start(client, resident, data)
    assert started["upload"] is None and started["photo"]["id"] == uploaded["id"]


async def test_deduplication_is_per_owner_but_files_are_shared(client, settings, resident):
    data = jpeg()
    mine = (await upload_simple(client, resident, data))["photo"]
    other = await new_resident(client)
    started = await start(client, other, data)
    assert started["photo"] is None and started["upload"] is not None  # no hint that someone has it
    theirs = (await upload_simple(client, other, data))["photo"]
    assert mine["id"] != theirs["id"]
    assert len(stored_files(settings)) == 3


async def test_chiefs_upload_too(client):
    token = await new_account(client, Role.CHIEF, "chief.one")
    assert (await upload_simple(client, token, jpeg()))["userErrors"] == []
