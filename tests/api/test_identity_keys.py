"""Identity keyed on the canonical account: throttles count per account and per client address
whatever spelling of the login is used, one-time codes are limited so a stranger cannot lock the
owner out, and concurrent refreshes of one token get one new pair. GraphQL over HTTP, from several
client addresses."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import secrets
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import timedelta
from typing import Any

import httpx
import pytest
from tortoise.context import TortoiseContext

from identity.models import Role
from identity.service import create_user
from kernel import clock
from server.app import create_app
from server.settings import Limits, Settings
from tests.conftest import make_settings
from tests.graphql_client import DEVICE_REGISTER, SIGN_IN, gql_data, sign_in

PASSWORD = "correct horse battery"
OWNER_PHONE = "+8613800138000"
# One number, as people write it.
SPELLINGS = [
    "13800138000",
    "138 0013 8000",
    "138-0013-8000",
    "+86 138 0013 8000",
    "+86-138-0013-8000",
    "+86 (138) 0013-8000",
    "0086 138 0013 8000",
    "008613800138000",
    "(+86) 13800138000",
    "１３８００１３８０００",  # full-width digits from a Chinese keyboard
    " +8613800138000 ",
    "+86 13800138000",
]
ME = "{ me { id phone } }"
REFRESH = """mutation($t: String!) { tokenRefresh(input: {refreshToken: $t}) {
  accessToken refreshToken userErrors { code message } } }"""
PHONE_START = """mutation($p: String!) { phoneVerificationStart(input: {phone: $p}) {
  expiresAt userErrors { code field message } } }"""
PHONE_CONFIRM = """mutation($p: String!, $c: String!) { phoneVerificationConfirm(input: {phone: $p, code: $c}) {
  user { phone } userErrors { code field message } } }"""

Clients = Callable[[str], AbstractAsyncContextManager[httpx.AsyncClient]]


def clients_of(settings: Settings) -> Clients:
    """`async with at("10.0.0.1") as client:` a client of one app, calling from that address."""
    app = create_app(settings, init_db=False)

    def at(address: str) -> AbstractAsyncContextManager[httpx.AsyncClient]:
        transport = httpx.ASGITransport(app=app, client=(address, 50000))
        return httpx.AsyncClient(transport=transport, base_url="http://testserver")

    return at


@pytest.fixture
def at(db: TortoiseContext, settings: Settings) -> Clients:
    return clients_of(settings)


async def call(client: httpx.AsyncClient, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    """POST with ASCII-escaped JSON, so strings may hold what UTF-8 cannot (lone surrogates)."""
    body = json.dumps({"query": query, "variables": variables})
    response = await client.post("/graphql", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 200, response.text
    payload = response.json()
    assert "errors" not in payload, payload
    return payload["data"]


async def attempt(client: httpx.AsyncClient, login: str, password: str) -> str | None:
    """The error code of a sign-in, or None when it signed in."""
    data = (await call(client, SIGN_IN, {"input": {"login": login, "password": password}}))["signIn"]
    return data["userErrors"][0]["code"] if data["userErrors"] else None


# --- sign-in ------------------------------------------------------------------------------------


async def test_every_spelling_of_a_phone_number_signs_in_to_its_account(client):
    await create_user(role=Role.CHIEF, username="chief.phone", password=PASSWORD, phone="138 0013 8000")
    for login in SPELLINGS:
        assert await attempt(client, login, PASSWORD) is None, login
    assert await attempt(client, "+86 138 0013 800", PASSWORD) == "UNAUTHENTICATED"  # a digit short


async def test_wrong_passwords_in_many_spellings_are_throttled_on_the_account(client):
    await create_user(role=Role.CHIEF, username="chief.phone", password=PASSWORD, phone=OWNER_PHONE)
    codes = [await attempt(client, login, "guess guess") for login in SPELLINGS[:11]]
    assert codes[:5] == ["UNAUTHENTICATED"] * 5 and set(codes[5:]) == {"RATE_LIMITED"}
    # A twelfth spelling, or the username, with the right password: still throttled.
    assert await attempt(client, SPELLINGS[11], PASSWORD) == "RATE_LIMITED"
    assert await attempt(client, "chief.phone", PASSWORD) == "RATE_LIMITED"
    # After the window the owner signs in.
    later = clock.now() + timedelta(minutes=16)
    clock.set_clock(lambda: later)
    assert await attempt(client, SPELLINGS[0], PASSWORD) is None


async def test_failures_on_one_account_leave_others_and_other_addresses_alone(at: Clients):
    await create_user(role=Role.CHIEF, username="target", password=PASSWORD)
    await create_user(role=Role.CHIEF, username="bystander", password=PASSWORD)
    async with at("203.0.113.7") as attacker, at("198.51.100.2") as colleague:
        for _ in range(6):
            await attempt(attacker, "target", "guess guess")
        assert await attempt(attacker, "bystander", PASSWORD) is None
        # The account is throttled from everywhere: the guesses came for it, not for the address.
        assert await attempt(colleague, "target", PASSWORD) == "RATE_LIMITED"


async def test_one_address_trying_many_logins_is_throttled(db: TortoiseContext, tmp_path):
    settings = make_settings(
        media_root=tmp_path / "media",
        limits=Limits(requests_per_minute=100_000, sign_in_failures_per_address=8),
    )
    at = clients_of(settings)
    await create_user(role=Role.CHIEF, username="victim", password=PASSWORD)
    async with at("203.0.113.7") as sprayer, at("198.51.100.2") as elsewhere:
        codes = [await attempt(sprayer, f"user{i}", "guess guess") for i in range(9)]
        assert codes[:8] == ["UNAUTHENTICATED"] * 8 and codes[8] == "RATE_LIMITED"
        assert await attempt(sprayer, "victim", PASSWORD) == "RATE_LIMITED"
        assert await attempt(elsewhere, "victim", PASSWORD) is None


@pytest.mark.parametrize(
    "login",
    ["x" * 100_000, "bad\x00name", "+86 \ud800 138", "", "   ", "account:1", "１３８"],
)
async def test_odd_logins_are_a_plain_refusal(client, login):
    assert await attempt(client, login, "guess guess") in ("UNAUTHENTICATED", "INVALID")


# --- one-time codes -----------------------------------------------------------------------------


async def resident(client: httpx.AsyncClient, device_key: str | None = None) -> str:
    key = device_key or secrets.token_urlsafe(32)
    data = await gql_data(client, DEVICE_REGISTER, {"input": {"deviceKey": key}})
    return data["deviceRegister"]["accessToken"]


async def start(client: httpx.AsyncClient, token: str, phone: str) -> str | None:
    data = (await gql_data(client, PHONE_START, {"p": phone}, token=token))["phoneVerificationStart"]
    return data["userErrors"][0]["code"] if data["userErrors"] else None


def last_code(caplog: pytest.LogCaptureFixture) -> str:
    messages = [r.getMessage() for r in caplog.records if r.name == "identity.otp"]
    sent = re.search(r": (\d{6}) ", messages[-1])
    assert sent is not None, messages[-1]
    return sent.group(1)


async def test_a_stranger_cannot_lock_the_owner_out_of_their_number(at: Clients, caplog):
    caplog.set_level(logging.WARNING, logger="identity.otp")
    async with at("203.0.113.7") as stranger_client, at("198.51.100.2") as owner_client:
        # A stranger asks for codes to the owner's number from one address, one account after another,
        # and guesses at them.
        codes = []
        for _ in range(5):
            stranger = await resident(stranger_client)
            for _ in range(6):
                codes.append(await start(stranger_client, stranger, OWNER_PHONE))
            for guess in ("000000", "111111", "222222", "333333", "444444"):
                await gql_data(stranger_client, PHONE_CONFIRM, {"p": OWNER_PHONE, "c": guess}, token=stranger)
        assert codes[:5] == [None] * 5 and codes[5] == "RATE_LIMITED"  # per account and number
        assert codes.count(None) == 20 and codes[-1] == "RATE_LIMITED"  # per address

        owner = await resident(owner_client)
        assert await start(owner_client, owner, "138 0013 8000") is None
        code = last_code(caplog)
        confirmed = await gql_data(owner_client, PHONE_CONFIRM, {"p": OWNER_PHONE, "c": code}, token=owner)
        assert confirmed["phoneVerificationConfirm"] == {"user": {"phone": OWNER_PHONE}, "userErrors": []}


async def test_codes_to_one_number_are_bounded_across_addresses_but_not_for_its_holder(at: Clients):
    await create_user(role=Role.CHIEF, username="holder", password=PASSWORD, phone=OWNER_PHONE)
    sent = []
    for address in ("203.0.113.1", "203.0.113.2", "203.0.113.3"):
        async with at(address) as bomber:
            for _ in range(4):
                token = await resident(bomber)
                sent += [await start(bomber, token, OWNER_PHONE) for _ in range(3)]
    assert sent.count(None) == 30 and sent[-1] == "RATE_LIMITED"  # across all accounts
    async with at("198.51.100.2") as owner_client:
        tokens = await sign_in(owner_client, "holder", PASSWORD)
        assert await start(owner_client, tokens["accessToken"], OWNER_PHONE) is None


async def test_one_account_cannot_send_codes_to_many_numbers(client):
    device_key = secrets.token_urlsafe(32)
    token = await resident(client, device_key)
    numbers = ["+8613800138001", "+8613800138002", "+8613800138003", "+8613800138004"]
    assert [await start(client, token, n) for n in numbers] == [None, None, None, "RATE_LIMITED"]
    assert await start(client, token, "138 0013 8002") is None  # one of its numbers again
    later = clock.now() + timedelta(days=1, minutes=1)
    clock.set_clock(lambda: later)
    assert await start(client, await resident(client, device_key), numbers[3]) is None


async def test_one_account_is_limited_per_hour(client):
    token = await resident(client)
    numbers = ["+8613800138001", "+8613800138002", "+8613800138003"]
    codes = [await start(client, token, numbers[i % 3]) for i in range(11)]
    assert codes[:10] == [None] * 10 and codes[10] == "RATE_LIMITED"


@pytest.mark.parametrize("phone", ["12345", "+86 123", "+1 555 0100", "not a number", "+86" + "1" * 300])
async def test_not_a_phone_number_is_a_user_error(client, phone):
    token = await resident(client)
    data = (await gql_data(client, PHONE_START, {"p": phone}, token=token))["phoneVerificationStart"]
    assert data["userErrors"][0]["code"] == "INVALID" and data["userErrors"][0]["field"] == ["input", "phone"]


# --- refresh --------------------------------------------------------------------------------------


async def refresh(client: httpx.AsyncClient, token: str) -> dict[str, Any]:
    return (await gql_data(client, REFRESH, {"t": token}))["tokenRefresh"]


async def test_concurrent_refreshes_of_one_token_get_the_same_pair(client):
    await create_user(role=Role.DISPATCHER, username="disp", password=PASSWORD)
    tokens = await sign_in(client, "disp", PASSWORD)
    first, second = await asyncio.gather(
        refresh(client, tokens["refreshToken"]), refresh(client, tokens["refreshToken"])
    )
    assert first["userErrors"] == [] and second["userErrors"] == []
    assert (first["accessToken"], first["refreshToken"]) == (second["accessToken"], second["refreshToken"])
    assert first["refreshToken"] != tokens["refreshToken"]
    # A retry a little later (the answer was lost) gets it again; the pair works.
    later = clock.now() + timedelta(seconds=20)
    clock.set_clock(lambda: later)
    again = await refresh(client, tokens["refreshToken"])
    assert again["refreshToken"] == first["refreshToken"] and again["accessToken"] == first["accessToken"]
    assert (await gql_data(client, ME, token=first["accessToken"]))["me"] is not None
    newer = await refresh(client, first["refreshToken"])
    assert newer["userErrors"] == []


async def test_a_refresh_token_back_after_the_grace_window_ends_the_session(client):
    await create_user(role=Role.DISPATCHER, username="disp", password=PASSWORD)
    tokens = await sign_in(client, "disp", PASSWORD)
    rotated = await refresh(client, tokens["refreshToken"])
    later = clock.now() + timedelta(seconds=31)
    clock.set_clock(lambda: later)
    reuse = await refresh(client, tokens["refreshToken"])
    assert reuse["userErrors"][0]["code"] == "UNAUTHENTICATED" and reuse["refreshToken"] is None
    assert (await refresh(client, rotated["refreshToken"]))["userErrors"][0]["code"] == "UNAUTHENTICATED"


async def test_a_replay_after_the_new_token_was_used_ends_the_session(client):
    await create_user(role=Role.DISPATCHER, username="disp", password=PASSWORD)
    tokens = await sign_in(client, "disp", PASSWORD)
    rotated = await refresh(client, tokens["refreshToken"])
    newest = await refresh(client, rotated["refreshToken"])
    # The first token again, within seconds, but its successor has moved on: a copy, not a race.
    reuse = await refresh(client, tokens["refreshToken"])
    assert reuse["userErrors"][0]["code"] == "UNAUTHENTICATED"
    assert (await refresh(client, newest["refreshToken"]))["userErrors"][0]["code"] == "UNAUTHENTICATED"


@pytest.mark.parametrize("token", ["", "short", "x" * 100_000, "\ud800" * 30, "a\x00" * 20, "é" * 40])
async def test_malformed_refresh_tokens_are_refused(client, token):
    refused = (await call(client, REFRESH, {"t": token}))["tokenRefresh"]
    assert refused["userErrors"][0]["code"] in ("UNAUTHENTICATED", "INVALID")
    out = await call(
        client,
        "mutation($t:String!){ signOut(input:{refreshToken:$t}) { signedOut userErrors { code } } }",
        {"t": token},
    )
    if out["signOut"]["userErrors"]:  # refused at the input boundary: unstorable or over-long text
        assert [e["code"] for e in out["signOut"]["userErrors"]] == ["INVALID"]
        assert len(token) > 1024 or "\x00" in token or "\ud800" in token
    else:
        assert out["signOut"]["signedOut"] is True
