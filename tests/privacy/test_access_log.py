"""The access log (issue 15, item 3): staff and admin reads of phones, reporters' accounts, original
photos, EXIF and tracks are recorded with the request id; admins read the log; nothing changes it."""

from __future__ import annotations

import random
import signal
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from strawberry import relay

from identity.models import AccessKind, AccessRecord, User
from kernel import clock
from server.seed import load_demo_city
from tests.graphql_client import gql, gql_data
from tests.media.phone import NODE, auth, jpeg, upload_simple
from tests.patrols.test_patrols_api import PATROL, T0, append, finish, start, walk
from tests.privacy.helpers import ACCESS_LOG, access_log, gql_with_id
from tests.privacy.test_retention import at
from tests.reports.helpers import demo_sign_in, report_input, resident, submit_ok
from tests.servers import Server

pytestmark = pytest.mark.usefixtures("demo")

USER = "query($id: ID!) { node(id: $id) { ... on User { id displayName phone } } }"


def gid(type_name: str, pk: int | str) -> str:
    return relay.to_base64(type_name, pk)


async def test_an_admin_reading_a_residents_account_and_phone_is_logged_once_per_request(
    client, access_log_written
):
    token, resident_id = await resident(client)
    await User.filter(id=resident_id).update(phone="+8613912345678")
    admin = await demo_sign_in(client, "admin")
    query = "query($id: ID!) { a: node(id: $id) { ... on User { phone } } b: node(id: $id) { ... on User { phone } } }"
    data = await gql_with_id(client, query, {"id": gid("User", resident_id)}, admin, request_id="phone-read")
    assert data["a"]["phone"] == "+8613912345678"
    records = await access_log(client, admin, subject=gid("User", resident_id))
    # The same look twice in one request is one record of each kind.
    assert sorted((r["kind"], r["requestId"], r["role"]) for r in records) == [
        ("PHONE", "phone-read", "ADMIN"),
        ("REPORTER_IDENTITY", "phone-read", "ADMIN"),
    ]
    # The resident reading their own phone is not a look at someone else's data.
    own = await gql_data(client, USER, {"id": gid("User", resident_id)}, token)
    assert own["node"]["phone"] == "+8613912345678"
    # Staff do not see residents at all: nothing read, nothing logged.
    staff = await demo_sign_in(client, "police.west")
    assert (await gql_data(client, USER, {"id": gid("User", resident_id)}, staff))["node"] is None
    await access_log_written()
    assert await AccessRecord.filter(subject_id=resident_id).count() == 2


async def test_original_photo_and_exif_reads_by_staff_are_logged_with_the_request_id(client):
    owner, _ = await resident(client)
    photo = (await upload_simple(client, owner, jpeg()))["photo"]
    photo_db_id = int(relay.GlobalID.from_id(photo["id"]).node_id)
    dispatcher = await demo_sign_in(client, "dispatcher")
    # Attached to a report: it follows the case (unattached, it is its owner's alone).
    await submit_ok(client, owner, report_input("noise.neighbour", photoIds=[photo["id"]]))
    seen = (await gql_with_id(client, NODE, {"id": photo["id"]}, dispatcher, request_id="exif-1"))["node"]
    assert seen["exifLocation"] is not None and seen["camera"] is not None
    original = await client.get(
        f"/media/photos/{photo_db_id}/original", headers={**auth(dispatcher), "X-Request-ID": "orig-1"}
    )
    assert original.status_code == 200
    # The owner's own reads are not in the log; a refused original is not served nor logged as read.
    await gql_data(client, NODE, {"id": photo["id"]}, owner)
    refused = await client.get(f"/media/photos/{photo_db_id}/original", headers=auth(owner))
    assert refused.status_code == 404

    admin = await demo_sign_in(client, "admin")
    records = await access_log(client, admin, subject=photo["id"])
    assert sorted((r["kind"], r["requestId"], r["role"]) for r in records) == [
        ("ORIGINAL_PHOTO", "orig-1", "DISPATCHER"),
        ("PHOTO_EXIF", "exif-1", "DISPATCHER"),  # location and camera: one read of the photo's EXIF
    ]
    dispatcher_id = (await gql_data(client, "{ me { id } }", token=dispatcher))["me"]["id"]
    assert {r["userId"] for r in records} == {dispatcher_id}


async def test_a_forestry_officers_attempt_at_a_noise_complainants_photo_is_logged_as_refused(client):
    owner, _ = await resident(client)
    photo = (await upload_simple(client, owner, jpeg()))["photo"]
    photo_db_id = int(relay.GlobalID.from_id(photo["id"]).node_id)
    await submit_ok(client, owner, report_input("noise.neighbour", photoIds=[photo["id"]]))
    forestry = await demo_sign_in(client, "forestry.staff")
    headers = {**auth(forestry), "X-Request-ID": "walk-1"}
    attempt = await client.get(f"/media/photos/{photo_db_id}/original", headers=headers)
    missing = await client.get(f"/media/photos/{photo_db_id + 1000}/original", headers=headers)
    assert attempt.status_code == missing.status_code == 404 and attempt.content == missing.content
    # The case is on the public map, so its photo's rendition is anyone's; its evidence is not.
    seen = (await gql_with_id(client, NODE, {"id": photo["id"]}, forestry, request_id="walk-2"))["node"]
    assert (seen["originalUrl"], seen["exifLocation"], seen["camera"]) == (None, None, None)

    admin = await demo_sign_in(client, "admin")
    forestry_id = (await gql_data(client, "{ me { id } }", token=forestry))["me"]["id"]
    records = await access_log(client, admin, userId=forestry_id)
    assert sorted((r["kind"], r["subjectId"], r["refused"], r["requestId"]) for r in records) == sorted(
        [
            ("ORIGINAL_PHOTO", photo["id"], True, "walk-1"),
            ("ORIGINAL_PHOTO", gid("Photo", photo_db_id + 1000), True, "walk-1"),
            ("PHOTO_EXIF", photo["id"], True, "walk-2"),
        ]
    )
    # The filter tells refusals from reads: the dispatcher's read of the same original is not one.
    dispatcher = await demo_sign_in(client, "dispatcher")
    assert (
        await client.get(f"/media/photos/{photo_db_id}/original", headers=auth(dispatcher))
    ).status_code == 200
    refused = await access_log(client, admin, subject=photo["id"], refused=True)
    reads = await access_log(client, admin, subject=photo["id"], refused=False)
    assert sorted((r["kind"], r["role"]) for r in refused) == [
        ("ORIGINAL_PHOTO", "STAFF"),
        ("PHOTO_EXIF", "STAFF"),
    ]
    assert [(r["role"], r["refused"]) for r in reads] == [("DISPATCHER", False)]


async def test_track_reads_by_overseers_are_logged_and_a_chiefs_own_are_not(client, access_log_written):
    chief = await demo_sign_in(client, "chief.village")
    admin = await demo_sign_in(client, "admin")
    county = await demo_sign_in(client, "chief.county")
    clock.set_clock(lambda: T0 + timedelta(hours=1))
    areas = await gql_data(client, "{ patrolAreas(first: 10) { nodes { id code geometry } } }")
    area = next(a for a in areas["patrolAreas"]["nodes"] if a["code"] == "R-QH-01")
    city = {"tokens": {"chief.village": chief}, "areas": {"R-QH-01": area}}
    patrol = (await start(client, city))["patrol"]
    await append(client, chief, patrol["id"], walk(area["geometry"]["coordinates"], 300, random.Random(3)))
    await finish(client, chief, patrol["id"], T0 + timedelta(seconds=299))

    for token in (chief, county):  # the chief and their supervisor: no staff read
        assert (await gql_data(client, PATROL, {"id": patrol["id"]}, token))["node"]["track"]["nodes"]
        exported = await client.get(f"/patrols/{patrol['id']}/track.gpx", headers=auth(token))
        assert exported.status_code == 200
    await access_log_written()
    assert await AccessRecord.all().count() == 0

    node = (await gql_with_id(client, PATROL, {"id": patrol["id"]}, admin, request_id="track-gql"))["node"]
    assert node["track"]["nodes"]
    exported = await client.get(
        f"/patrols/{patrol['id']}/track.gpx", headers={**auth(admin), "X-Request-ID": "track-gpx"}
    )
    assert exported.status_code == 200
    records = await access_log(client, admin, kind="TRACK")
    assert sorted((r["subjectId"], r["requestId"]) for r in records) == [
        (patrol["id"], "track-gpx"),
        (patrol["id"], "track-gql"),
    ]


async def test_the_log_is_for_admins_only_and_pages_newest_first(client):
    token, resident_id = await resident(client)
    await User.filter(id=resident_id).update(phone="+8613912345678")
    admin = await demo_sign_in(client, "admin")
    for n in range(3):
        await gql_with_id(client, USER, {"id": gid("User", resident_id)}, admin, request_id=f"r{n}")
    first = await gql_data(
        client,
        "query($k: AccessKind) { accessLog(first: 2, kind: $k) { nodes { requestId } pageInfo { hasNextPage endCursor } } }",
        {"k": "PHONE"},
        admin,
    )
    assert [r["requestId"] for r in first["accessLog"]["nodes"]] == ["r2", "r1"]
    rest = await gql_data(
        client,
        "query($a: String) { accessLog(first: 2, kind: PHONE, after: $a) { nodes { requestId } } }",
        {"a": first["accessLog"]["pageInfo"]["endCursor"]},
        admin,
    )
    assert [r["requestId"] for r in rest["accessLog"]["nodes"]] == ["r0"]
    admin_id = (await gql_data(client, "{ me { id } }", token=admin))["me"]["id"]
    assert len(await access_log(client, admin, userId=admin_id)) == 6  # 3 phones, 3 identities
    record_id = (await access_log(client, admin))[0]["id"]

    for who in ("dispatcher", "police.west", None):
        caller = token if who is None else await demo_sign_in(client, who)
        body = await gql(client, ACCESS_LOG, {"first": 10}, caller)
        assert body["data"] is None and body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
        node = await gql_data(client, "query($id: ID!) { node(id: $id) { id } }", {"id": record_id}, caller)
        assert node["node"] is None
    bad = await gql(client, ACCESS_LOG, {"first": 10, "subject": gid("Case", 1)}, admin)
    assert bad["errors"][0]["extensions"]["code"] == "INVALID"


async def test_nothing_changes_the_log(client, access_log_written):
    schema = await gql_data(client, "{ __schema { mutationType { fields { name } } } }")
    names = [f["name"].lower() for f in schema["__schema"]["mutationType"]["fields"]]
    assert not [n for n in names if "access" in n or "audit" in n]
    token, resident_id = await resident(client)
    await User.filter(id=resident_id).update(phone="+8613912345678")
    admin = await demo_sign_in(client, "admin")
    await gql_data(client, USER, {"id": gid("User", resident_id)}, admin)
    await access_log_written()
    record = await AccessRecord.filter(kind=AccessKind.PHONE).get()
    record.purpose = "rewritten"
    with pytest.raises(PermissionError):
        await record.save()
    with pytest.raises(PermissionError):
        await record.delete()
    assert (await AccessRecord.get(id=record.id)).purpose == ""


# Long enough that nothing but a flush writes the records while the test runs.
HELD_BACK = {"access_log_write_delay_ms": 60_000}


@pytest.mark.parametrize("settings", [HELD_BACK], indirect=True)
async def test_records_held_back_by_the_group_writer_are_all_in_an_admins_access_log_read(client):
    admin = await demo_sign_in(client, "admin")
    residents = [await resident(client) for _ in range(3)]
    for n, (_, resident_id) in enumerate(residents):
        await User.filter(id=resident_id).update(phone=f"+861391234567{n}")
        at(T0 + timedelta(minutes=n))
        await gql_with_id(client, USER, {"id": gid("User", resident_id)}, admin, request_id=f"held-{n}")
    clock.set_clock(None)
    assert await AccessRecord.all().count() == 0  # held back by the writer, not written yet

    records = await access_log(client, admin)
    # All there, each with the time and request id of its own read, not of the insert that wrote them.
    assert sorted((r["kind"], r["subjectId"], r["requestId"], r["at"]) for r in records) == sorted(
        (kind, gid("User", resident_id), f"held-{n}", (T0 + timedelta(minutes=n)).isoformat())
        for n, (_, resident_id) in enumerate(residents)
        for kind in ("PHONE", "REPORTER_IDENTITY")
    )


def _graphql(server: Server, query: str, variables: dict[str, Any], token: str = "") -> Any:
    headers = {"Authorization": f"Bearer {token}", "X-Request-ID": "held-at-shutdown"} if token else {}
    answer = httpx.post(
        f"{server.url}/graphql", json={"query": query, "variables": variables}, headers=headers, timeout=10
    )
    body = answer.json()
    assert answer.status_code == 200 and not body.get("errors"), body
    return body["data"]


def test_a_servers_shutdown_writes_the_records_it_holds_back(tmp_path: Path) -> None:
    """Two servers on one database; the first holds its records for a minute, then is stopped."""
    held = {"ACCESS_LOG_WRITE_DELAY_MS": "60000"}
    first = Server(tmp_path, "--seed-demo", env=held, name="first")
    second: Server | None = None
    try:
        first.wait_ready()
        second = Server(tmp_path, env=held, name="second")
        second.wait_ready()
        device = "mutation($k: String!) { deviceRegister(input: {deviceKey: $k}) { user { id } } }"
        resident_id = _graphql(first, device, {"k": uuid.uuid4().hex * 2})["deviceRegister"]["user"]["id"]
        sign_in = 'mutation($p: String!) { signIn(input: {login: "admin", password: $p}) { accessToken } }'
        admin = _graphql(first, sign_in, {"p": load_demo_city()["password"]})["signIn"]["accessToken"]
        assert _graphql(first, USER, {"id": resident_id}, admin)["node"]["id"] == resident_id

        def logged() -> list[tuple[str, str]]:  # as the second server's admin sees it
            nodes = _graphql(second, ACCESS_LOG, {"first": 10, "subject": resident_id}, admin)
            return [(r["kind"], r["requestId"]) for r in nodes["accessLog"]["nodes"]]

        assert logged() == []  # still held by the first server (its own reads would flush it)
        assert first.stop() in (0, -signal.SIGTERM)
        assert logged() == [("REPORTER_IDENTITY", "held-at-shutdown")]
    finally:
        first.stop()
        if second is not None:
            second.stop()
    log = first.log_path.read_text()
    assert "Traceback" not in log and " ERROR " not in log, log
