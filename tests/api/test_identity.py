"""Sign-in, tokens, roles and phone verification, through GraphQL over HTTP."""

from __future__ import annotations

import logging
import re
import secrets
from datetime import timedelta

import pytest
from strawberry import relay

from identity.models import Role, User
from kernel import clock
from reports.models import Department
from tests.graphql_client import DEVICE_REGISTER, SIGN_IN, gql, gql_data, new_account, new_resident, sign_in

ME = "{ me { id role username phone } }"
REFRESH = """mutation($t: String!) { tokenRefresh(input: {refreshToken: $t}) {
  accessToken refreshToken userErrors { code message } } }"""


async def test_anonymous_device_gets_a_token_without_personal_data(client):
    key = secrets.token_urlsafe(32)
    first = (await gql_data(client, DEVICE_REGISTER, {"input": {"deviceKey": key}}))["deviceRegister"]
    assert first["userErrors"] == [] and first["user"]["role"] == "CITIZEN"
    me = (await gql_data(client, ME, token=first["accessToken"]))["me"]
    assert me["id"] == first["user"]["id"] and me["phone"] is None
    # A retry (or the app restoring itself) signs in to the same account instead of creating another.
    again = (await gql_data(client, DEVICE_REGISTER, {"input": {"deviceKey": key}}))["deviceRegister"]
    assert again["user"]["id"] == first["user"]["id"]
    assert await User.filter(role=Role.CITIZEN).count() == 1


async def test_device_key_too_short_is_a_user_error(client):
    data = await gql_data(client, DEVICE_REGISTER, {"input": {"deviceKey": "abc"}})
    assert data["deviceRegister"]["accessToken"] is None
    assert data["deviceRegister"]["userErrors"][0]["code"] == "INVALID"


async def test_staff_sign_in_and_wrong_password_look_alike_for_unknown_users(client):
    await new_account(client, Role.DISPATCHER, "dispatch1")
    wrong = await gql_data(client, SIGN_IN, {"input": {"login": "dispatch1", "password": "nope nope nope"}})
    unknown = await gql_data(client, SIGN_IN, {"input": {"login": "nobody", "password": "nope nope nope"}})
    assert wrong["signIn"]["userErrors"] == unknown["signIn"]["userErrors"]
    assert wrong["signIn"]["userErrors"][0]["code"] == "UNAUTHENTICATED"
    assert wrong["signIn"]["accessToken"] is None


async def test_repeated_wrong_passwords_are_throttled(client):
    await new_account(client, Role.CHIEF, "chief1")
    codes = []
    for _ in range(6):
        data = await gql_data(client, SIGN_IN, {"input": {"login": "chief1", "password": "guess guess"}})
        codes.append(data["signIn"]["userErrors"][0]["code"])
    assert codes[:5] == ["UNAUTHENTICATED"] * 5 and codes[5] == "RATE_LIMITED"
    # Even the right password is refused while throttled.
    data = await gql_data(
        client, SIGN_IN, {"input": {"login": "chief1", "password": "correct horse battery"}}
    )
    assert data["signIn"]["userErrors"][0]["code"] == "RATE_LIMITED"


async def test_refresh_rotates_and_reuse_revokes_the_family(client):
    await new_account(
        client, Role.STAFF, "staff1", department_id=(await Department.create(code="d", name="D")).id
    )
    tokens = await sign_in(client, "staff1", "correct horse battery")
    rotated = (await gql_data(client, REFRESH, {"t": tokens["refreshToken"]}))["tokenRefresh"]
    assert rotated["userErrors"] == [] and rotated["refreshToken"] != tokens["refreshToken"]
    assert (await gql_data(client, ME, token=rotated["accessToken"]))["me"]["role"] == "STAFF"
    # The old refresh token comes back after the grace window: someone copied it. The whole session ends.
    later = clock.now() + timedelta(seconds=31)
    clock.set_clock(lambda: later)
    reuse = (await gql_data(client, REFRESH, {"t": tokens["refreshToken"]}))["tokenRefresh"]
    assert reuse["userErrors"][0]["code"] == "UNAUTHENTICATED"
    newer = (await gql_data(client, REFRESH, {"t": rotated["refreshToken"]}))["tokenRefresh"]
    assert newer["userErrors"][0]["code"] == "UNAUTHENTICATED"
    response = await client.post(
        "/graphql", json={"query": ME}, headers={"Authorization": f"Bearer {rotated['accessToken']}"}
    )
    assert response.status_code == 401
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_sign_out_revokes_access_and_refresh(client):
    token = await new_account(client, Role.ADMIN, "admin1")
    tokens = await sign_in(client, "admin1", "correct horse battery")
    out = await gql_data(
        client,
        "mutation($t:String!){ signOut(input:{refreshToken:$t}) { signedOut } }",
        {"t": tokens["refreshToken"]},
    )
    assert out["signOut"]["signedOut"] is True
    bad = await client.post(
        "/graphql", json={"query": ME}, headers={"Authorization": f"Bearer {tokens['accessToken']}"}
    )
    assert bad.status_code == 401
    assert (await gql_data(client, ME, token=token))["me"]["role"] == "ADMIN"  # other sessions go on


async def test_a_deactivated_account_loses_access_at_once(client):
    token = await new_account(client, Role.ADMIN, "admin1")
    assert (await gql_data(client, ME, token=token))["me"]["role"] == "ADMIN"
    await User.filter(username="admin1").update(is_active=False)
    response = await client.post("/graphql", json={"query": ME}, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


@pytest.mark.parametrize(
    "header",
    ["Bearer not-a-jwt", "Basic dXNlcjpwYXNz", "Bearer ", "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0."],
)
async def test_forged_or_malformed_tokens_get_401(client, header):
    response = await client.post("/graphql", json={"query": ME}, headers={"Authorization": header})
    assert response.status_code == 401
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert "Traceback" not in response.text


async def test_expired_access_token_gets_401(client):
    token = await new_account(client, Role.ADMIN, "admin2")
    assert (await gql_data(client, ME, token=token))["me"]["role"] == "ADMIN"
    later = clock.now() + timedelta(minutes=16)  # access tokens live 15 minutes
    clock.set_clock(lambda: later)
    response = await client.post("/graphql", json={"query": ME}, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401 and "expired" in response.json()["errors"][0]["message"]


PHONE_START = """mutation($p: String!) { phoneVerificationStart(input: {phone: $p}) { expiresAt userErrors { code field message } } }"""
PHONE_CONFIRM = """mutation($p: String!, $c: String!) { phoneVerificationConfirm(input: {phone: $p, code: $c}) {
  user { phone } userErrors { code field message } } }"""


def _sent_code(caplog: pytest.LogCaptureFixture) -> str:
    messages = [r.getMessage() for r in caplog.records if r.name == "identity.otp"]
    sent = re.search(r": (\d{6}) ", messages[-1])
    assert sent is not None, messages[-1]
    return sent.group(1)


async def test_resident_verifies_phone_with_single_use_code(client, caplog):
    caplog.set_level(logging.WARNING, logger="identity.otp")
    token = await new_resident(client)
    started = await gql_data(client, PHONE_START, {"p": "138 0013 8000"}, token=token)
    assert started["phoneVerificationStart"]["userErrors"] == []
    code = _sent_code(caplog)
    wrong = await gql_data(
        client,
        PHONE_CONFIRM,
        {"p": "+8613800138000", "c": "000000" if code != "000000" else "111111"},
        token=token,
    )
    assert wrong["phoneVerificationConfirm"]["userErrors"][0]["code"] == "INVALID"
    ok = await gql_data(client, PHONE_CONFIRM, {"p": "+8613800138000", "c": code}, token=token)
    assert ok["phoneVerificationConfirm"]["user"]["phone"] == "+8613800138000"
    reused = await gql_data(client, PHONE_CONFIRM, {"p": "+8613800138000", "c": code}, token=token)
    assert reused["phoneVerificationConfirm"]["userErrors"][0]["code"] == "INVALID"


async def test_expired_code_and_too_many_attempts_are_refused(client, caplog):
    caplog.set_level(logging.WARNING, logger="identity.otp")
    token = await new_resident(client)
    await gql_data(client, PHONE_START, {"p": "+8613900139000"}, token=token)
    code = _sent_code(caplog)
    wrong = "999999" if code != "999999" else "888888"
    for _ in range(5):
        await gql_data(client, PHONE_CONFIRM, {"p": "+8613900139000", "c": wrong}, token=token)
    locked = await gql_data(client, PHONE_CONFIRM, {"p": "+8613900139000", "c": code}, token=token)
    assert locked["phoneVerificationConfirm"]["userErrors"][0]["code"] == "RATE_LIMITED"
    await gql_data(client, PHONE_START, {"p": "+8613900139000"}, token=token)
    fresh = _sent_code(caplog)
    later = clock.now() + timedelta(minutes=6)
    clock.set_clock(lambda: later)
    expired = await gql_data(client, PHONE_CONFIRM, {"p": "+8613900139000", "c": fresh}, token=token)
    assert expired["phoneVerificationConfirm"]["userErrors"][0]["code"] == "INVALID"


async def test_phone_is_visible_only_to_owner_and_admin(client):
    admin = await new_account(client, Role.ADMIN, "admin3")
    department = await Department.create(code="eco", name="Ecology")
    staff = await new_account(
        client, Role.STAFF, "staff3", department_id=department.id, phone="+8613700137000"
    )
    other = await new_account(client, Role.DISPATCHER, "disp3")
    staff_id = (await gql_data(client, ME, token=staff))["me"]["id"]
    query = "query($id: ID!) { node(id: $id) { ... on User { username phone } } }"
    assert (await gql_data(client, query, {"id": staff_id}, token=staff))["node"]["phone"] == "+8613700137000"
    assert (await gql_data(client, query, {"id": staff_id}, token=admin))["node"]["phone"] == "+8613700137000"
    assert (await gql_data(client, query, {"id": staff_id}, token=other))["node"] == {
        "username": "staff3",
        "phone": None,
    }
    resident = await new_resident(client)
    assert (await gql_data(client, query, {"id": staff_id}, token=resident))["node"] is None


USER_CREATE = """mutation($input: UserCreateInput!) { userCreate(input: $input) {
  user { id role username department { code } } userErrors { code field message } } }"""


async def test_admin_creates_staff_accounts_and_others_may_not(client):
    admin = await new_account(client, Role.ADMIN, "admin4")
    department = await Department.create(code="urban", name="Urban management")
    dept_id = (await gql_data(client, "{ departments(first: 5) { nodes { id code } } }"))["departments"][
        "nodes"
    ][0]["id"]
    created = await gql_data(
        client,
        USER_CREATE,
        {
            "input": {
                "role": "STAFF",
                "username": "zhang.san",
                "password": "a long password",
                "departmentId": dept_id,
            }
        },
        token=admin,
    )
    assert created["userCreate"]["user"]["department"]["code"] == department.code
    assert (await sign_in(client, "zhang.san", "a long password"))["user"]["role"] == "STAFF"
    duplicate = await gql_data(
        client,
        USER_CREATE,
        {"input": {"role": "CHIEF", "username": "zhang.san", "password": "a long password"}},
        token=admin,
    )
    assert duplicate["userCreate"]["userErrors"][0]["code"] == "CONFLICT"
    bad = await gql_data(
        client, USER_CREATE, {"input": {"role": "STAFF", "username": "x", "password": "short"}}, token=admin
    )
    fields = {tuple(e["field"]) for e in bad["userCreate"]["userErrors"]}
    assert ("input", "username") in fields and ("input", "department") in fields
    resident = await new_resident(client)
    refused = await gql_data(
        client,
        USER_CREATE,
        {"input": {"role": "ADMIN", "username": "evil", "password": "a long password"}},
        token=resident,
    )
    assert refused["userCreate"]["userErrors"][0]["code"] == "FORBIDDEN"
    assert not await User.exists(username="evil")


async def test_users_list_is_admin_only_and_pages_by_cursor(client):
    admin = await new_account(client, Role.ADMIN, "admin5")
    for i in range(5):
        await new_account(client, Role.CHIEF, f"chief{i:02d}")
    query = "query($after: String) { users(first: 2, after: $after, role: CHIEF) { nodes { username } pageInfo { hasNextPage endCursor } } }"
    seen, after = [], None
    while True:
        page = (await gql_data(client, query, {"after": after}, token=admin))["users"]
        seen += [n["username"] for n in page["nodes"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == [f"chief{i:02d}" for i in reversed(range(5))]
    body = await gql(client, "{ users(first: 2) { nodes { username } } }", token=await new_resident(client))
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    body = await gql(client, "{ users(first: 500) { nodes { username } } }", token=admin)
    assert body["errors"][0]["extensions"]["code"] == "INVALID"


async def test_who_sees_which_account(client):
    department = await Department.create(code="water", name="Water")
    tokens = {
        "admin": await new_account(client, Role.ADMIN, "admin6"),
        "staff": await new_account(client, Role.STAFF, "staff6", department_id=department.id),
        "dispatcher": await new_account(client, Role.DISPATCHER, "disp6"),
        "chief": await new_account(client, Role.CHIEF, "chief6"),
        "resident": await new_resident(client),
    }
    ids = {name: (await gql_data(client, ME, token=token))["me"]["id"] for name, token in tokens.items()}
    query = "query($id: ID!) { node(id: $id) { ... on User { id } } }"

    async def sees(viewer: str | None) -> set[str]:
        token = tokens[viewer] if viewer else None
        return {
            name for name, i in ids.items() if (await gql_data(client, query, {"id": i}, token=token))["node"]
        }

    assert await sees("admin") == set(ids)
    colleagues = {"admin", "staff", "dispatcher", "chief"}
    assert await sees("staff") == colleagues and await sees("dispatcher") == colleagues
    assert await sees("chief") == {"chief"} and await sees("resident") == {"resident"}
    assert await sees(None) == set()


async def test_an_account_in_a_missing_department_is_refused(client):
    admin = await new_account(client, Role.ADMIN, "admin7")
    missing = relay.GlobalID("Department", "999999")
    answer = await gql_data(
        client,
        USER_CREATE,
        {
            "input": {
                "role": "STAFF",
                "username": "li.si",
                "password": "a long password",
                "departmentId": str(missing),
            }
        },
        token=admin,
    )
    assert answer["userCreate"]["userErrors"] == [
        {"code": "INVALID", "field": ["input", "departmentId"], "message": "No such department."}
    ]
