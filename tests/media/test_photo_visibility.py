"""Who may see which photo (issue 15, item 1), role by role: photos follow the case they belong to.

Roles: no token, an anonymous device account, the reporter, another resident, staff of the case's
department (police.west) and of another one (forestry.staff), the dispatcher, the admin, a chief.
Photos: one attached to a report of a case kept off the public map, one attached to a public case,
one never attached. Ways in: `node(id:)`, the case's `photos` list, the rendition URL, and for
evidence the `exifLocation`/`originalUrl` fields and the original's URL. Whatever a role may not see
answers exactly like a photo that does not exist, so sequential ids cannot be walked.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import pytest_asyncio
from strawberry import relay
from tortoise.context import TortoiseContext

from media.models import Photo
from reports.models import Case
from server.seed import seed_demo
from tests.graphql_client import gql_data, new_resident
from tests.media.phone import NODE, PHOTO_FIELDS, auth, jpeg, upload_simple
from tests.reports.helpers import WEST, db_id, demo_sign_in, report_input, submit_ok

CASE_PHOTOS = f"query($id: ID!) {{ node(id: $id) {{ ... on Case {{ photos {{ {PHOTO_FIELDS} }} }} }} }}"
MISSING_PHOTO = "UGhvdG86OTk5OTk5"  # Photo:999999

NOBODY, DEVICE, REPORTER, RESIDENT = "nobody", "device", "reporter", "resident"
POLICE, FORESTRY, DISPATCHER, ADMIN, CHIEF = (
    "police.west",
    "forestry.staff",
    "dispatcher",
    "admin",
    "chief.county",
)
ROLES = [NOBODY, DEVICE, REPORTER, RESIDENT, POLICE, FORESTRY, DISPATCHER, ADMIN, CHIEF]
CASE_STAFF = {POLICE, DISPATCHER, ADMIN}

# (photo, role) -> (sees the photo and its renditions, sees its original and EXIF)
EXPECTED: dict[str, dict[str, tuple[bool, bool]]] = {
    "private case": {r: (r in CASE_STAFF | {REPORTER}, r in CASE_STAFF) for r in ROLES},
    "public case": {r: (True, r in CASE_STAFF) for r in ROLES},
    "unattached": {r: (r == REPORTER, False) for r in ROLES},
}
IN_CASE_LIST = {  # who sees the case itself, hence its photo list
    "private case": CASE_STAFF | {REPORTER},
    "public case": CASE_STAFF | {REPORTER},
}


@pytest_asyncio.fixture
async def demo(db: TortoiseContext) -> None:
    await seed_demo()


@pytest_asyncio.fixture
async def world(client: httpx.AsyncClient, demo: None) -> dict[str, Any]:
    reporter = await new_resident(client)
    tokens: dict[str, str | None] = {NOBODY: None, DEVICE: await new_resident(client), REPORTER: reporter}
    tokens[RESIDENT] = await new_resident(client)
    for name in (POLICE, FORESTRY, DISPATCHER, ADMIN, CHIEF):
        tokens[name] = await demo_sign_in(client, name)
    photos: dict[str, dict[str, Any]] = {}
    cases: dict[str, str] = {}
    places = {"private case": WEST, "public case": (WEST[0] + 0.04, WEST[1] - 0.04)}  # 5 km apart
    for seed, kind in enumerate(("private case", "public case", "unattached")):
        photo = (await upload_simple(client, reporter, jpeg(seed=seed + 1)))["photo"]
        photos[kind] = photo
        if kind == "unattached":
            continue
        result = await submit_ok(
            client, reporter, report_input("noise.neighbour", places[kind], photoIds=[photo["id"]])
        )
        assert result["case"]["department"]["code"] == "police-west"
        cases[kind] = result["case"]["id"]
    # A case kept off the public map (as a rejected one is): its photo is no longer public either.
    private = db_id(cases["private case"])
    await Case.filter(id=private).update(public=False)
    await Photo.filter(id=db_id(photos["private case"]["id"])).update(public=False)
    return {"tokens": tokens, "photos": photos, "cases": cases}


async def _node(client: httpx.AsyncClient, photo_id: str, token: str | None) -> dict[str, Any] | None:
    return (await gql_data(client, NODE, {"id": photo_id}, token))["node"]


async def _get(client: httpx.AsyncClient, url: str, token: str | None) -> httpx.Response:
    return await client.get(url, headers=auth(token))


@pytest.mark.parametrize("kind", list(EXPECTED))
async def test_each_role_sees_what_it_may_and_the_rest_looks_missing(
    client: httpx.AsyncClient, world: dict[str, Any], kind: str
) -> None:
    photo = world["photos"][kind]
    pid = db_id(photo["id"])
    original = f"/media/photos/{pid}/original"
    missing_original = await _get(client, "/media/photos/999999/original", world["tokens"][ADMIN])
    assert missing_original.status_code == 404
    failures: list[tuple[object, ...]] = []
    for role in ROLES:
        token = world["tokens"][role]
        sees, evidence = EXPECTED[kind][role]
        node = await _node(client, photo["id"], token)
        rendition = await _get(client, photo["urls"]["display"], token)
        file = await _get(client, original, token)
        got_node = node is not None
        got_evidence = (
            node is not None and node["exifLocation"] is not None and node["originalUrl"] is not None
        )
        if got_node != sees or got_evidence != evidence:
            failures.append((role, "node", got_node, got_evidence))
        if (rendition.status_code == 200) != sees:
            failures.append((role, "rendition", rendition.status_code))
        if (file.status_code == 200) != evidence:
            failures.append((role, "original", file.status_code))
        if not sees:  # exactly like a photo that does not exist
            assert rendition.status_code == 404 and rendition.json() == missing_original.json()
        if not evidence:
            assert file.status_code == 404 and file.json() == missing_original.json()
            assert file.headers["cache-control"] == "no-store"
        if evidence:
            assert file.content and file.headers["content-disposition"].startswith("attachment;")
        if kind in IN_CASE_LIST:
            listed = (await gql_data(client, CASE_PHOTOS, {"id": world["cases"][kind]}, token))["node"]
            if role in IN_CASE_LIST[kind]:
                assert listed is not None, role
                ids = [p["id"] for p in listed["photos"]]
                in_list = photo["id"] in ids
                if in_list != sees:
                    failures.append((role, "list", in_list))
                if in_list:
                    entry = next(p for p in listed["photos"] if p["id"] == photo["id"])
                    if (entry["exifLocation"] is not None) != evidence:
                        failures.append((role, "list evidence", entry["exifLocation"]))
            else:
                assert listed is None, role  # the case itself is missing to them
    assert failures == [], failures


async def test_walking_sequential_ids_finds_nothing_but_own_and_held_photos(
    client: httpx.AsyncClient, world: dict[str, Any]
) -> None:
    """Forestry staff walking photo ids (the issue's noise complainant): every private photo and
    every missing id gives the same null node and the same 404."""
    forestry = world["tokens"][FORESTRY]
    private = [world["photos"][k] for k in ("private case", "unattached")]
    first = min(db_id(p["id"]) for p in world["photos"].values())
    hidden = {db_id(p["id"]) for p in private}
    for pid in range(first, first + 10):
        node = await _node(client, relay.to_base64("Photo", pid), forestry)
        if pid in hidden or not await Photo.exists(id=pid):
            assert node is None, pid
        original = await _get(client, f"/media/photos/{pid}/original", forestry)
        assert original.status_code == 404
    assert await _node(client, MISSING_PHOTO, forestry) is None
