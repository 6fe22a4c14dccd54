"""Who sees which photo, evidence and file; how files are served; expiry; the issue's "done when"."""

from __future__ import annotations

import asyncio
import io
import os
import sys
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import cast

import pytest
from PIL import Image
from strawberry import relay

from identity.models import Role
from identity.service import Principal
from kernel import clock
from kernel.errors import DomainError, ErrorCode
from media import service
from media.models import Photo, UploadSession
from schema.context import Info
from schema.loaders import Loaders
from schema.media.types import load_photos
from server.app import create_app
from server.seed import seed_demo
from server.settings import Settings
from tests.conftest import DATABASE_URL, make_settings
from tests.graphql_client import gql_data, new_account, new_resident
from tests.media.phone import (
    LATITUDE,
    LONGITUDE,
    NODE,
    asgi_patch_then_drop,
    auth,
    finish,
    head,
    heic,
    jpeg,
    patch,
    start,
    upload_simple,
)
from tests.reports.helpers import report_input, submit_ok

REPO = Path(__file__).resolve().parents[2]
STAFF_ROLES = [Role.DISPATCHER, Role.ADMIN]


async def staff_token(client, role: Role = Role.DISPATCHER) -> str:
    return await new_account(client, role, f"{role.value.lower()}.one")


def photo_id(global_id: str) -> int:
    return int(relay.GlobalID.from_id(global_id).node_id)


@pytest.fixture
async def resident(client) -> str:
    return await new_resident(client)


async def attach(client, token: str, *photo_ids: str) -> None:
    """Attach photos to a report in a (public) case of the demo city, as a resident would: they then
    follow that case (its staff, dispatchers and admins see their evidence)."""
    await seed_demo()
    await submit_ok(client, token, report_input("noise.neighbour", photoIds=list(photo_ids)))


async def test_a_private_derivative_is_refused_to_strangers_and_served_once_public(client, resident):
    photo = (await upload_simple(client, resident, jpeg()))["photo"]
    display = photo["urls"]["display"]
    stranger = await new_resident(client)
    for token in (None, stranger, await staff_token(client)):  # unattached: its owner's alone
        assert (await client.get(display, headers=auth(token))).status_code == 404
    for token in (resident,):
        served = await client.get(display, headers=auth(token))
        assert served.status_code == 200
        assert served.headers["cache-control"] == "private, no-store"

    await service.set_public([photo_id(photo["id"])])
    served = await client.get(display)
    assert served.status_code == 200
    assert served.headers["content-type"] == "image/jpeg"
    assert served.headers["x-content-type-options"] == "nosniff"
    assert served.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert served.headers["content-disposition"] == f'inline; filename="{photo_id(photo["id"])}-display.jpg"'
    assert served.headers["content-security-policy"] == "default-src 'none'; sandbox"
    assert int(served.headers["content-length"]) == len(served.content)
    assert Image.open(io.BytesIO(served.content)).size == (1200, 900)  # never upscaled
    revalidated = await client.get(display, headers={"If-None-Match": served.headers["etag"]})
    assert revalidated.status_code == 304 and revalidated.content == b""
    thumb = await client.get(photo["urls"]["thumb"])
    assert Image.open(io.BytesIO(thumb.content)).size == (320, 240)


async def test_originals_are_for_staff_only(client, resident):
    data = jpeg()
    photo = (await upload_simple(client, resident, data))["photo"]
    url = f"/media/photos/{photo_id(photo['id'])}/original"
    assert photo["originalUrl"] is None
    staff = {role: await staff_token(client, role) for role in STAFF_ROLES}
    for token in staff.values():  # not attached to anything: nobody's evidence
        assert (await client.get(url, headers=auth(token))).status_code == 404
    await attach(client, resident, photo["id"])  # a public case: its derivatives, never its original
    chief = await new_account(client, Role.CHIEF, "chief.one")
    for refused in (None, resident, chief):
        assert (await client.get(url, headers=auth(refused))).status_code == 404
    for token in staff.values():
        served = await client.get(url, headers=auth(token))
        assert served.status_code == 200 and served.content == data
        assert served.headers["cache-control"] == "private, no-store"
        assert served.headers["content-disposition"].startswith("attachment;")
    admin = await new_account(client, Role.ADMIN, "admin.two")
    assert (await client.get("/media/photos/999999/original", headers=auth(admin))).status_code == 404


@pytest.mark.parametrize(
    "path",
    [
        "/media/..%2f..%2fetc/passwd",
        "/media/%2e%2e/%2e%2e/etc/passwd",
        "/media/..%252f..%252fetc%252fpasswd",
        "/media/derivatives/..%2f..%2f..%2fsecret.key",
        "/media/originals/00/00/x.jpg",
        "/media/",
    ],
)
async def test_path_traversal_is_not_found(client, resident, path):
    await upload_simple(client, resident, jpeg())
    response = await client.get(path, headers=auth(await staff_token(client)))
    assert response.status_code == 404


async def test_an_original_is_never_served_by_its_storage_key(client, settings, resident):
    await upload_simple(client, resident, jpeg())
    original = next((settings.media_root / "originals").rglob("*.jpg")).relative_to(settings.media_root)
    response = await client.get(f"/media/{original}", headers=auth(await staff_token(client)))
    assert response.status_code == 404


async def test_evidence_fields_are_for_staff_and_public_files_carry_no_exif(client, resident):
    photo = (await upload_simple(client, resident, jpeg()))["photo"]
    assert photo["exifLocation"] is None and photo["camera"] is None
    assert photo["capturedAt"] == "2026-05-01T01:30:00+00:00"
    await attach(client, resident, photo["id"])
    for url in photo["urls"].values():
        served = (await client.get(url)).content
        assert Image.open(io.BytesIO(served)).getexif() == {}
        assert b"Exif" not in served and b"PhoneCo" not in served

    anyone = (await gql_data(client, NODE, {"id": photo["id"]}))["node"]
    assert anyone["id"] == photo["id"] and anyone["exifLocation"] is None
    staff = (await gql_data(client, NODE, {"id": photo["id"]}, await staff_token(client)))["node"]
    assert staff["exifLocation"] == pytest.approx({"latitude": LATITUDE, "longitude": LONGITUDE}, abs=1e-5)
    assert staff["camera"] == {"make": "PhoneCo", "model": "P-12"}


async def test_node_shows_an_unattached_photo_to_its_owner_alone(client, resident):
    photo = (await upload_simple(client, resident, jpeg()))["photo"]
    stranger = await new_resident(client)
    assert (await gql_data(client, NODE, {"id": photo["id"]}, stranger))["node"] is None
    assert (await gql_data(client, NODE, {"id": photo["id"]}))["node"] is None
    assert (await gql_data(client, NODE, {"id": photo["id"]}, resident))["node"]["width"] == 1200
    staff = [await staff_token(client, role) for role in STAFF_ROLES]
    for token in staff:
        assert (await gql_data(client, NODE, {"id": photo["id"]}, token))["node"] is None
    await attach(client, resident, photo["id"])
    for token in staff:
        assert (await gql_data(client, NODE, {"id": photo["id"]}, token))["node"] is not None


async def test_load_photos_batches_and_keeps_only_what_the_caller_may_see(client, resident):
    mine = [(await upload_simple(client, resident, jpeg(seed=s)))["photo"] for s in (1, 2)]
    other = await new_resident(client)
    theirs = (await upload_simple(client, other, jpeg(seed=3)))["photo"]
    ids = [photo_id(mine[1]["id"]), photo_id(theirs["id"]), photo_id(mine[0]["id"]), 999999]
    owner = await Photo.get(id=ids[0]).prefetch_related("owner")
    loaders = Loaders()
    # load_photos reads only the caller and the request's loaders from the context
    context = SimpleNamespace(principal=Principal(owner.owner, 0), loaders=loaders)
    info = cast(Info, SimpleNamespace(context=context))
    nodes = await load_photos(info, ids)
    assert [n.id for n in nodes] == [ids[0], ids[2]]
    assert await load_photos(info, ids[:1]) == nodes[:1]  # cached per request, no new query needed
    assert all(loaders.rows(Photo).cache_map.get(i) for i in ids)  # one loader holds every id asked for


# --- claiming and expiry --------------------------------------------------------------------------


async def test_claiming_keeps_a_photo_and_unattached_ones_expire_with_their_files(client, settings, resident):
    kept = (await upload_simple(client, resident, jpeg(seed=1)))["photo"]
    dropped = (await upload_simple(client, resident, jpeg(seed=2)))["photo"]
    owner_id = (await Photo.get(id=photo_id(kept["id"]))).owner_id
    claimed = await service.claim_photos(owner_id, [photo_id(kept["id"])], field=["input", "photoIds"])
    assert claimed[0].attached_at is not None
    half_done = (await start(client, resident, jpeg(seed=3)))["upload"]
    await patch(client, resident, half_done["url"], 0, b"\xff\xd8")
    files_before = {p.name for p in settings.media_root.rglob("*") if p.is_file()}
    assert any(name.startswith("session-") for name in files_before)

    intake = _intake(client)
    nothing = await service.sweep_expired(intake, clock.now() + timedelta(hours=23))
    assert nothing == service.SweepResult()
    result = await service.sweep_expired(intake, clock.now() + timedelta(hours=25))
    assert (result.uploads, result.photos, result.files) == (1, 1, 3)
    assert await Photo.filter(id=photo_id(dropped["id"])).count() == 0
    assert await Photo.filter(id=photo_id(kept["id"])).count() == 1
    remaining = [p for p in settings.media_root.rglob("*") if p.is_file()]
    assert len(remaining) == 3 and not any(p.name.startswith("session-") for p in remaining)
    assert (await head(client, resident, half_done["url"])).status_code == 404
    with pytest.raises(DomainError) as missing:
        await service.claim_photos(owner_id, [photo_id(dropped["id"])], field=["input", "photoIds"])
    assert missing.value.code is ErrorCode.NOT_FOUND


async def test_a_refused_claim_attaches_nothing(client, resident):
    photo = (await upload_simple(client, resident, jpeg()))["photo"]
    row = await Photo.get(id=photo_id(photo["id"]))
    with pytest.raises(DomainError):
        await service.claim_photos(row.owner_id, [row.id, 999999], field=["input", "photoIds"])
    assert (await Photo.get(id=row.id)).attached_at is None


async def test_shared_files_stay_while_another_owner_still_has_the_photo(client, settings, resident):
    data = jpeg()
    await upload_simple(client, resident, data)
    other = await new_resident(client)
    theirs = (await upload_simple(client, other, data))["photo"]
    row = await Photo.get(id=photo_id(theirs["id"]))
    await service.claim_photos(row.owner_id, [row.id], field=["photoIds"])
    result = await service.sweep_expired(_intake(client), clock.now() + timedelta(days=2))
    assert (result.photos, result.files) == (1, 0)
    assert len([p for p in settings.media_root.rglob("*") if p.is_file()]) == 3


async def test_several_sweepers_at_once_remove_each_thing_once(client, resident):
    for seed in range(3):
        await upload_simple(client, resident, jpeg(seed=seed))
    later = clock.now() + timedelta(days=2)
    results = await asyncio.gather(*(service.sweep_expired(_intake(client), later) for _ in range(3)))
    assert sum(r.photos for r in results) == 3 and sum(r.files for r in results) == 9
    assert await Photo.all().count() == 0


async def test_stale_temporary_files_are_removed(client, settings, resident):
    intake = _intake(client)
    live = (await start(client, resident, jpeg()))["upload"]
    await patch(client, resident, live["url"], 0, b"\xff\xd8")
    stray = intake.temp_dir / "direct-0123.part"
    stray.write_bytes(b"left by a crash")
    old = (clock.now() - timedelta(days=3)).timestamp()
    for path in intake.temp_dir.iterdir():
        os.utime(path, (old, old))
    result = await service.sweep_expired(intake)
    assert result.temp_files == 1 and not stray.exists()
    assert (await head(client, resident, live["url"])).headers["upload-offset"] == "2"


async def test_the_sweep_media_command(client, settings, resident):
    await upload_simple(client, resident, jpeg())
    await Photo.all().update(expires_at=clock.now() - timedelta(minutes=1))
    env = {**os.environ, "DATABASE_URL": DATABASE_URL, "MEDIA_ROOT": str(settings.media_root)}
    command = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "server",
        "sweep-media",
        cwd=REPO,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(command.communicate(), 60)
    assert command.returncode == 0, stderr.decode()
    assert "1 unattached photos, 3 stored files" in stdout.decode()
    assert await Photo.all().count() == 0


async def test_the_periodic_sweep_runs_in_the_app_lifespan(db, make_app_client, tmp_path):
    app = create_app(make_settings(media_root=tmp_path / "swept", media_sweep_seconds=1), init_db=False)
    async with make_app_client() as client:
        token = await new_resident(client)
        upload = (await start(client, token, jpeg()))["upload"]
    await UploadSession.all().update(expires_at=clock.now() - timedelta(minutes=1))
    async with app.router.lifespan_context(app):
        for _ in range(100):
            if not await UploadSession.filter(id=upload["id"]).exists():
                break
            await asyncio.sleep(0.05)
    assert not await UploadSession.filter(id=upload["id"]).exists()


def _intake(client):
    """The app's PhotoIntake (the same object the routes use)."""
    for route in client._transport.app.routes:
        endpoint = getattr(route, "endpoint", None)
        owner = getattr(endpoint, "__self__", None)
        if owner is not None and hasattr(owner, "intake"):
            return owner.intake
    raise AssertionError("no upload route")


# --- the "done when" -------------------------------------------------------------------------


async def test_a_phone_uploads_a_heic_and_a_jpeg_over_an_interrupted_connection(client, settings: Settings):
    phone = await new_resident(client)
    app = client._transport.app
    ids: list[str] = []
    for data in (heic(), jpeg()):
        upload = (await start(client, phone, data, clientId=f"photo-{len(ids)}"))["upload"]
        path = "/" + upload["url"].split("/", 3)[3]
        third = len(data) // 3
        await asgi_patch_then_drop(app, phone, path, 0, [data[:third]])  # the train enters a tunnel
        # The app restarts, asks again with the same client id, and resumes where the server is.
        again = (await start(client, phone, data, clientId=f"photo-{len(ids)}"))["upload"]
        assert again["id"] == upload["id"] and again["offset"] == third
        offset = int((await head(client, phone, upload["url"])).headers["upload-offset"])
        assert (await patch(client, phone, upload["url"], offset, data[offset:])).status_code == 204
        photo = (await finish(client, phone, upload["id"]))["photo"]
        ids.append(photo["id"])
    assert len(set(ids)) == 2

    await attach(client, phone, *ids)  # a public case: anyone sees the renditions, its staff the evidence
    staff = await staff_token(client)
    for global_id in ids:
        public = (await gql_data(client, NODE, {"id": global_id}))["node"]
        assert public["exifLocation"] is None and public["camera"] is None
        for url in public["urls"].values():
            served = (await client.get(url)).content
            assert Image.open(io.BytesIO(served)).getexif() == {} and b"Exif" not in served
        seen = (await gql_data(client, NODE, {"id": global_id}, staff))["node"]
        assert seen["exifLocation"] == pytest.approx({"latitude": LATITUDE, "longitude": LONGITUDE}, abs=1e-5)
        assert seen["capturedAt"] == "2026-05-01T01:30:00+00:00"
