"""Notifications end to end through a real server and its delivery worker: a resident's Web Push,
decrypted by the test's push service with the browser's keys; an expired subscription removed; the
one-time code and the closure notice reaching the Alibaba Cloud SMS fake in the resident's language
(a neighbour who joined the case closes it: the one who closes a case is not told; and the `escalate`
command closes one left unanswered)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest_asyncio
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from starlette.applications import Starlette
from starlette.routing import Route

from notifications.push import b64url, b64url_decode
from tests.e2e.conftest import City, eventually
from tests.e2e.helpers import deliveries, new_case, step, work_to_resolved
from tests.graphql_client import gql_data, new_resident
from tests.notifications.fakes import serve
from tests.notifications.helpers import inbox, set_preferences
from tests.notifications.push_fakes import SUBJECT, Browser, PushService, new_vapid_key
from tests.notifications.sms_fakes import AliyunFake
from tests.reports.helpers import WEST, demo_sign_in, report_input, submit_ok
from tests.servers import process_env
from tests.webhooks.helpers import admin_token

SUBSCRIBE = """mutation($i: PushSubscriptionRegisterInput!) { pushSubscriptionRegister(input: $i) {
  subscription { endpoint } userErrors { code field message } } }"""
MINE = "{ webPushPublicKey myPushSubscriptions { endpoint } }"
PHONE_START = """mutation($p: String!) { phoneVerificationStart(input: {phone: $p}) {
  expiresAt userErrors { code field message } } }"""
PHONE_CONFIRM = """mutation($p: String!, $c: String!) { phoneVerificationConfirm(input: {phone: $p, code: $c}) {
  user { phone } userErrors { code field message } } }"""
SMS_TEMPLATES = json.loads(
    (Path(__file__).parents[2] / "notifications" / "data" / "sms_templates.json").read_text()
)["templates"]


def public_key(private: str) -> str:
    """The VAPID public key (what a browser gets as applicationServerKey), derived here on its own."""
    key = ec.derive_private_key(int.from_bytes(b64url_decode(private), "big"), ec.SECP256R1())
    raw = key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return b64url(raw)


@pytest_asyncio.fixture
async def push_service() -> AsyncIterator[tuple[PushService, str]]:
    """A push service on 127.0.0.1 and the VAPID private key of the server that may use it."""
    vapid = new_vapid_key()
    service = PushService(vapid_public=public_key(vapid))
    app = Starlette(routes=[Route("/push/{token}", service.endpoint, methods=["POST"])])
    async with serve(app) as base:
        service.base = base
        yield service, vapid


async def _push_city(city: City, vapid: str) -> Any:
    return await city.server(VAPID_PRIVATE_KEY=vapid, VAPID_SUBJECT=SUBJECT, PUSH_ALLOW_INSECURE="true")


async def _subscribe(client: Any, token: str, endpoint: str, browser: Browser) -> None:
    variables = {"i": {"endpoint": endpoint, "keys": browser.keys(), "userAgent": "Firefox/140"}}
    result = (await gql_data(client, SUBSCRIBE, variables, token=token))["pushSubscriptionRegister"]
    assert result["userErrors"] == [], result


async def test_the_resident_decrypts_the_accepted_notice_pushed_in_english(
    city: City, push_service: tuple[PushService, str]
) -> None:
    service, vapid = push_service
    client = await _push_city(city, vapid)
    citizen = await new_resident(client)
    prefs = await set_preferences(client, citizen, language="EN", pushEnabled=True)
    assert prefs["userErrors"] == [] and prefs["preferences"]["language"] == "EN"
    browser = Browser()
    endpoint = f"{service.base}/push/resident-1"
    await _subscribe(client, citizen, endpoint, browser)
    assert (await gql_data(client, MINE, token=citizen))["webPushPublicKey"] == service.vapid_public

    case = await new_case(client, citizen)
    staff = await demo_sign_in(client, "police.west")
    await step(client, staff, case["id"], "ACCEPT")

    ((path, headers, body),) = await eventually(lambda: service.received, what="a push message")
    assert path == "/push/resident-1" and headers["content-encoding"] == "aes128gcm"
    message = json.loads(browser.decrypt(body))
    assert message["title"] == "Your report was accepted"
    assert message["body"].startswith("Your ") and case["reference"] in message["body"]
    assert case["reference"].encode() not in body  # encrypted on the wire

    box = await inbox(client, citizen)
    accepted = [n for n in box["nodes"] if n["kind"] == "case_accepted"]
    assert [(n["title"], n["body"]) for n in accepted] == [(message["title"], message["body"])]
    assert accepted[0]["case"]["id"] == case["id"] and box["unread"] >= 1


async def test_an_expired_push_subscription_is_removed(
    city: City, push_service: tuple[PushService, str]
) -> None:
    service, vapid = push_service
    client = await _push_city(city, vapid)
    citizen = await new_resident(client)
    await set_preferences(client, citizen, language="EN", pushEnabled=True)
    endpoint = f"{service.base}/push/expired"
    await _subscribe(client, citizen, endpoint, Browser())
    service.answers["/push/expired"] = 410  # the browser unsubscribed; the push service says so

    case = await new_case(client, citizen)
    await step(client, await demo_sign_in(client, "police.west"), case["id"], "ACCEPT")

    async def removed() -> bool:
        return (await gql_data(client, MINE, token=citizen))["myPushSubscriptions"] == []

    await eventually(removed, what="the expired subscription removed")
    assert [p for p, _, _ in service.received] == ["/push/expired"]
    admin = await admin_token(client)
    (push,) = await deliveries(client, admin, channel="push")
    assert push["status"] == "DEAD" and push["attempts"] == 1, push
    # the inbox still has the notice
    assert "case_accepted" in [n["kind"] for n in (await inbox(client, citizen))["nodes"]]


async def test_the_sms_fake_receives_the_code_and_the_closure_notice_in_english(city: City) -> None:
    fake = AliyunFake("LTAI-e2e", "e2e-secret")
    async with serve(fake.app()) as base:
        client = await city.server(
            OTP_SENDER="sms",
            SMS_PROVIDER="aliyun",
            ALIYUN_ACCESS_KEY_ID="LTAI-e2e",
            ALIYUN_ACCESS_KEY_SECRET="e2e-secret",
            ALIYUN_SMS_ENDPOINT=f"{base}/",
        )
        citizen = await new_resident(client)
        prefs = await set_preferences(client, citizen, language="EN", smsEnabled=True, quietHours=None)
        assert prefs["userErrors"] == [] and prefs["preferences"]["quietHours"] is None, prefs

        phone = "+8613700137000"
        started = (await gql_data(client, PHONE_START, {"p": phone}, token=citizen))["phoneVerificationStart"]
        assert started["userErrors"] == [], started
        (code_sms,) = await eventually(lambda: fake.sent, what="the one-time code")
        assert code_sms.template == SMS_TEMPLATES["otp"]["en"]["aliyun"] and code_sms.sign_name == "EnvCase"
        assert code_sms.phone.endswith("13700137000")
        confirmed = await gql_data(
            client, PHONE_CONFIRM, {"p": phone, "c": code_sms.params["code"]}, token=citizen
        )
        assert confirmed["phoneVerificationConfirm"]["userErrors"] == [], confirmed
        assert confirmed["phoneVerificationConfirm"]["user"]["phone"].endswith("13700137000")

        case = await new_case(client, citizen)
        # A neighbour reports the same noise ("me too"); the one who closes a case is not told of it,
        # so the neighbour confirms and our resident hears of the closure.
        neighbour = await new_resident(client)
        joined = await submit_ok(client, neighbour, report_input("noise.neighbour", WEST))
        assert joined["joinedExistingCase"] and joined["case"]["id"] == case["id"], joined
        await work_to_resolved(client, await demo_sign_in(client, "police.west"), case["id"])
        closed = await step(client, neighbour, case["id"], "CONFIRM")
        assert closed["status"] == "CLOSED"

        closure = SMS_TEMPLATES["case_closed"]["en"]["aliyun"]
        await eventually(
            lambda: [s for s in fake.sent if s.template == closure], within=30, what="the closure notice"
        )
        # A case of the resident's alone, resolved and left unanswered, is closed by the `escalate`
        # command (a cron job; no quiet period here): the resident hears of that closure too.
        own = await new_case(client, citizen, at=(WEST[0], WEST[1] + 0.02))
        await work_to_resolved(client, await demo_sign_in(client, "police.west"), own["id"])
        swept = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "server", "escalate"],
            env=process_env(city.tmp_path, {"FEEDBACK_QUIET_DAYS": "0"}),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert swept.returncode == 0, swept.stdout + swept.stderr
        await eventually(
            lambda: [
                s for s in fake.sent if s.template == closure and s.params["reference"] == own["reference"]
            ],
            what="the closure notice of the case closed by the sweep",
        )
    notices = fake.sent[1:]
    assert all(s.sign_name == "EnvCase" and s.phone.endswith("13700137000") for s in notices), notices
    closures = [s.params for s in notices if s.template == closure]
    assert closures == [{"reference": case["reference"]}, {"reference": own["reference"]}]
    english = {kind["en"]["aliyun"] for kind in SMS_TEMPLATES.values()}
    assert {s.template for s in notices} <= english  # nothing in the other language
