"""Photos in an S3-compatible bucket (docs/storage.md), against moto's S3 server in its own process."""

from __future__ import annotations

import asyncio
import os
import secrets
import sys
import tracemalloc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import botocore.auth
import httpx
import pytest
import pytest_asyncio
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from strawberry import relay

from identity.models import Role
from kernel import clock
from media import service
from media.intake import PhotoIntake
from media.models import Photo
from media.s3 import S3Config, S3Error, S3Storage, sign_v4
from media.storage import Area, content_key
from server.app import create_app
from tests.conftest import DATABASE_URL, make_settings
from tests.graphql_client import new_account, new_resident
from tests.media.phone import auth, finish, head, jpeg, patch, sha256, start, upload_resumable
from tests.media.s3_server import REGION, S3Server

REPO = Path(__file__).resolve().parents[2]
MiB = 1024 * 1024


def s3_config(server: S3Server, bucket: str, **overrides: Any) -> S3Config:
    values: dict[str, Any] = {
        "endpoint": server.endpoint,
        "bucket": bucket,
        "region": REGION,
        "access_key_id": server.access_key_id,
        "secret_access_key": server.secret_access_key,
        "path_style": True,
        "prefix": "city/",
        "part_size": 5 * MiB,
    }
    return S3Config(**(values | overrides))


@pytest.fixture
def bucket(s3_server: S3Server) -> str:
    return s3_server.new_bucket(f"photos-{secrets.token_hex(4)}")


@pytest_asyncio.fixture
async def store(s3_server: S3Server, bucket: str) -> AsyncIterator[S3Storage]:
    storage = S3Storage(s3_config(s3_server, bucket))
    yield storage
    await storage.close()


async def read_all(storage: S3Storage, key: str) -> bytes:
    return b"".join([chunk async for chunk in storage.read_chunks(key)])


def key_of(data: bytes, area: Area = Area.ORIGINALS) -> str:
    return content_key(area, sha256(data), "jpg")


# --- the signer -------------------------------------------------------------------------------------


def test_the_signature_is_the_one_botocore_computes(monkeypatch: pytest.MonkeyPatch) -> None:
    url = httpx.URL(
        "https://bucket.oss-cn-hangzhou.aliyuncs.com/city/originals/ab/cd/x.jpg?partNumber=2&uploadId=a%2Fb"
    )
    now = datetime(2026, 5, 1, 9, 30, tzinfo=UTC)
    payload = sha256(b"part bytes")
    ours = sign_v4(
        "PUT",
        url,
        {"Content-Length": "10"},
        payload,
        access_key_id="AKIDEXAMPLE",
        secret_access_key="wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        region="cn-hangzhou",
        now=now,
    )
    request = AWSRequest(method="PUT", url=str(url), headers={"Content-Length": "10"}, data=b"part bytes")
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: now.replace(tzinfo=None))
    S3SigV4Auth(
        Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"), "s3", "cn-hangzhou"
    ).add_auth(request)
    assert ours["authorization"] == request.headers["Authorization"]


def test_path_style_and_virtual_host_addresses() -> None:
    server = S3Server("https://s3.example.com", "id", "secret")
    key = key_of(b"x")
    assert str(S3Storage(s3_config(server, "b")).url(key)) == f"https://s3.example.com/b/city/{key}"
    virtual = S3Storage(s3_config(server, "b", path_style=False, prefix=""))
    assert str(virtual.url(key)) == f"https://b.s3.example.com/{key}"
    with pytest.raises(ValueError):
        s3_config(server, "b", prefix="../up/")


# --- the store --------------------------------------------------------------------------------------


async def test_put_read_size_exists_delete_round_trip(
    store: S3Storage, s3_server: S3Server, bucket: str
) -> None:
    data = b"\xff\xd8 evidence"
    key = key_of(data)
    assert not await store.exists(key)
    with pytest.raises(FileNotFoundError):
        await store.size(key)
    with pytest.raises(FileNotFoundError):
        await read_all(store, key)
    await store.put_bytes(key, data)
    assert (await store.exists(key), await store.size(key), await read_all(store, key)) == (
        True,
        len(data),
        data,
    )
    assert s3_server.keys(bucket) == [f"city/{key}"]
    assert await store.delete(key) is True
    assert await store.delete(key) is False  # a retried delete is harmless
    assert s3_server.keys(bucket) == []


async def test_objects_are_private(store: S3Storage, s3_server: S3Server) -> None:
    data = b"with EXIF"
    key = key_of(data)
    await store.put_bytes(key, data)
    async with httpx.AsyncClient() as nobody:
        anonymous = await nobody.get(str(store.url(key)))
    assert anonymous.status_code == 403 and data not in anonymous.content


async def test_a_large_file_goes_in_parts_with_bounded_memory(
    store: S3Storage,
    s3_server: S3Server,
    bucket: str,
    tmp_path: Path,
) -> None:
    data = os.urandom(17 * MiB)  # four parts of at most 5 MiB
    source = tmp_path / "staged.part"
    source.write_bytes(data)
    key = key_of(data)
    await store.put_bytes(key_of(b"warm"), b"warm")  # the connection's one-time allocations come first
    tracemalloc.start()
    try:
        await store.put_file(key, source)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2 * MiB, f"put_file held {peak} bytes at once"  # not a part, let alone the file
    assert not source.exists()  # taken over, as with the local store
    assert await read_all(store, key) == data
    assert s3_server.client().head_object(Bucket=bucket, Key=f"city/{key}")["ETag"].endswith('-4"')
    assert s3_server.open_multipart_uploads(bucket) == []


async def test_a_failed_multipart_upload_is_aborted(
    s3_server: S3Server,
    bucket: str,
    tmp_path: Path,
) -> None:
    data = os.urandom(11 * MiB)
    source = tmp_path / "staged.part"
    source.write_bytes(data)
    calls = 0

    async def fail_the_second_part(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        if request.url.params.get("partNumber") == "2":
            raise httpx.ConnectError("the store went away", request=request)
        calls += 1
        return await real.handle_async_request(request)

    real = httpx.AsyncHTTPTransport()
    storage = S3Storage(s3_config(s3_server, bucket), transport=httpx.MockTransport(fail_the_second_part))
    try:
        with pytest.raises(S3Error):
            await storage.put_file(key_of(data), source)
    finally:
        await storage.close()
    assert calls >= 3  # create, part 1, abort: the store really saw the upload begin
    assert source.exists()  # still staged: the finish can be retried
    assert s3_server.keys(bucket) == [] and s3_server.open_multipart_uploads(bucket) == []


# --- through the app --------------------------------------------------------------------------------


def s3_settings(server: S3Server, bucket: str, tmp_path: Path, **overrides: Any) -> Any:
    values = {
        "media_root": tmp_path / "media",
        "media_storage": "s3",
        "s3_endpoint": server.endpoint,
        "s3_bucket": bucket,
        "s3_region": REGION,
        "s3_access_key_id": server.access_key_id,
        "s3_secret_access_key": server.secret_access_key,
        "s3_path_style": True,
        "s3_prefix": "city/",
    }
    return make_settings(**(values | overrides))


@asynccontextmanager
async def app_client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


@pytest_asyncio.fixture
async def s3_client(db, s3_server: S3Server, bucket: str, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(s3_settings(s3_server, bucket, tmp_path), init_db=False)
    async with app_client(app) as client:
        yield client
    await app.state.access_writer.close()
    await app_intake(app).storage.close()


def app_intake(app: Any) -> PhotoIntake:
    """The app's PhotoIntake, the one its upload route uses."""
    return next(r.endpoint.__self__.intake for r in app.routes if getattr(r, "name", "") == "upload")


async def test_a_resumable_upload_lands_in_the_bucket_and_is_served_through_the_app(
    s3_client: httpx.AsyncClient,
    s3_server: S3Server,
    bucket: str,
) -> None:
    token = await new_resident(s3_client)
    data = jpeg()
    finished = await upload_resumable(s3_client, token, data, chunk_size=64 * 1024)
    assert finished["userErrors"] == []
    photo = finished["photo"]
    digest = sha256(data)
    assert s3_server.keys(bucket) == [
        f"city/derivatives/{digest[:2]}/{digest[2:4]}/{digest}-display.jpg",
        f"city/derivatives/{digest[:2]}/{digest[2:4]}/{digest}-thumb.jpg",
        f"city/originals/{digest[:2]}/{digest[2:4]}/{digest}.jpg",
    ]
    stored = s3_server.client().get_object(Bucket=bucket, Key=s3_server.keys(bucket)[2])["Body"].read()
    assert stored == data  # the original, with its EXIF, byte for byte

    display = await s3_client.get(photo["urls"]["display"], headers={"Authorization": f"Bearer {token}"})
    assert display.status_code == 200 and display.headers["content-type"] == "image/jpeg"
    assert (
        display.content
        == s3_server.client().get_object(Bucket=bucket, Key=s3_server.keys(bucket)[0])["Body"].read()
    )

    photo_pk = relay.GlobalID.from_id(photo["id"]).node_id
    original = f"/media/photos/{photo_pk}/original"
    assert (await s3_client.get(original, headers={"Authorization": f"Bearer {token}"})).status_code == 404
    assert (await s3_client.get(original)).status_code == 404
    staff = await new_account(s3_client, Role.DISPATCHER, "dispatcher.s3")
    # staff see originals of photos that are evidence of a case; an unattached one is nobody's evidence
    assert (await s3_client.get(original, headers={"Authorization": f"Bearer {staff}"})).status_code == 404

    health = (await s3_client.get("/healthz")).json()
    assert health["media"] == {"storage": "s3", "status": "ok"}


async def test_the_sweep_removes_the_objects(
    s3_client: httpx.AsyncClient,
    s3_server: S3Server,
    bucket: str,
) -> None:
    token = await new_resident(s3_client)
    await upload_resumable(s3_client, token, jpeg(seed=7))
    assert len(s3_server.keys(bucket)) == 3
    intake = app_intake(s3_client._transport.app)  # type: ignore[attr-defined]
    result = await service.sweep_expired(intake, clock.now() + timedelta(days=2))
    assert (result.photos, result.files) == (1, 3)
    assert s3_server.keys(bucket) == []


async def test_a_store_outage_during_an_upload_leaves_it_resumable(
    db, s3_server: S3Server, bucket: str, tmp_path: Path
) -> None:
    """The same deployment, first with its store down (nothing listens there), then back."""
    down = create_app(
        s3_settings(s3_server, bucket, tmp_path, s3_endpoint="http://127.0.0.1:9"), init_db=False
    )
    up = create_app(s3_settings(s3_server, bucket, tmp_path), init_db=False)
    data = jpeg(seed=11)
    async with app_client(down) as client:
        token = await new_resident(client)
        upload = (await start(client, token, data))["upload"]
        assert (await patch(client, token, upload["url"], 0, data)).status_code == 204
        refused = await finish(client, token, upload["id"])
        assert refused["photo"] is None
        assert [(e["code"], e["field"]) for e in refused["userErrors"]] == [
            ("UNAVAILABLE", ["input", "uploadId"])
        ]
        assert (await head(client, token, upload["url"])).headers["upload-offset"] == str(len(data))
        health = await client.get("/healthz")
        assert health.status_code == 503 and health.json()["media"] == {
            "storage": "s3",
            "status": "unreachable",
        }
        served = await client.get("/media/derivatives/00/00/" + "0" * 64 + "-thumb.jpg")
        assert served.status_code == 404  # no such photo: the store is not even asked
    assert await Photo.all().count() == 0 and s3_server.keys(bucket) == []

    async with app_client(up) as client:
        finished = await finish(client, token, upload["id"])
        assert finished["userErrors"] == [] and finished["photo"] is not None
        display = finished["photo"]["urls"]["display"]
    assert len(s3_server.keys(bucket)) == 3

    async with app_client(down) as client:  # the photo exists, its bytes cannot be fetched now
        answer = await client.get(display, headers=auth(token))
        assert answer.status_code == 503 and answer.json()["errors"][0]["extensions"]["code"] == "UNAVAILABLE"
        assert answer.headers["retry-after"]
    for app in (down, up):
        await app.state.access_writer.close()
        await app_intake(app).storage.close()


# --- startup ----------------------------------------------------------------------------------------


async def run_server(env: dict[str, str]) -> tuple[int | None, str]:
    command = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "server",
        "run",
        "--port",
        "0",
        cwd=REPO,
        env={**os.environ, "DATABASE_URL": DATABASE_URL, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        _, stderr = await asyncio.wait_for(command.communicate(), 60)
    except TimeoutError:
        command.kill()
        await command.wait()
        raise
    return command.returncode, stderr.decode()


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"S3_BUCKET": "no-such-bucket"}, "S3_BUCKET"),
        ({"S3_SECRET_ACCESS_KEY": "wrong"}, "S3_SECRET_ACCESS_KEY"),
        ({"S3_ACCESS_KEY_ID": "AKIAUNKNOWN0000000000"}, "S3_ACCESS_KEY_ID"),
        ({"S3_ENDPOINT": "http://127.0.0.1:9"}, "S3_ENDPOINT"),
        ({"S3_BUCKET": ""}, "needs S3_BUCKET"),
    ],
)
async def test_an_unusable_bucket_stops_the_server_with_a_clear_error(
    s3_server: S3Server,
    bucket: str,
    tmp_path: Path,
    change: dict[str, str],
    named: str,
) -> None:
    env = {
        "MEDIA_ROOT": str(tmp_path / "media"),
        "MEDIA_STORAGE": "s3",
        "S3_ENDPOINT": s3_server.endpoint,
        "S3_BUCKET": bucket,
        "S3_REGION": REGION,
        "S3_ACCESS_KEY_ID": s3_server.access_key_id,
        "S3_SECRET_ACCESS_KEY": s3_server.secret_access_key,
        "S3_PATH_STYLE": "true",
        **change,
    }
    code, stderr = await run_server(env)
    assert code == 1 and "\nerror: MEDIA_STORAGE=s3" in "\n" + stderr, stderr
    assert named in stderr and "Traceback" not in stderr
