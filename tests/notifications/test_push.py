"""Web Push end to end: a subscription registered through GraphQL, a delivery sent by the "push"
channel to a local push service that checks the VAPID token (RFC 8292) and decrypts the message with
the subscription's private key (RFC 8291, written out here independently of the sender), and an
expired subscription (410) removed."""

from __future__ import annotations

import json
import os
from typing import Any

import httpx
import pytest
from cryptography.exceptions import InvalidTag
from starlette.applications import Starlette
from starlette.routing import Route
from tortoise.context import TortoiseContext

from delivery.channels import Result
from delivery.models import Delivery
from delivery.service import new_delivery
from notifications.models import PushSubscription
from notifications.push import b64url
from server.app import create_app
from server.channels import push_config
from tests.conftest import make_settings
from tests.graphql_client import gql_data, new_resident
from tests.notifications.fakes import serve
from tests.notifications.push_fakes import SUBJECT, Browser, PushService, new_vapid_key

REGISTER = """mutation($i: PushSubscriptionRegisterInput!) { pushSubscriptionRegister(input: $i) {
  subscription { endpoint userAgent lastSuccessAt } userErrors { code field message } } }"""
REMOVE = """mutation($e: String!) { pushSubscriptionRemove(input: {endpoint: $e}) {
  removed userErrors { code field message } } }"""
MINE = "{ webPushPublicKey myPushSubscriptions { endpoint userAgent } }"


@pytest.fixture
def vapid_key() -> str:
    return new_vapid_key()


async def _run(vapid_key: str, db: TortoiseContext, scenario: Any) -> None:
    settings = make_settings(vapid_private_key=vapid_key, vapid_subject=SUBJECT, push_allow_insecure=True)
    config = push_config(settings)
    assert config is not None
    from notifications.push import PushChannel, public_key_b64

    service = PushService(vapid_public=public_key_b64(config.vapid_key))
    app = Starlette(routes=[Route("/push/{token}", service.endpoint, methods=["POST"])])
    api = create_app(settings, init_db=False)
    transport = httpx.ASGITransport(app=api, client=("127.0.0.1", 50000))
    async with (
        serve(app) as base,
        httpx.AsyncClient(transport=transport, base_url="http://testserver") as client,
    ):
        service.base = base
        channel = PushChannel(config)
        try:
            await scenario(client, service, channel, base)
        finally:
            await channel.aclose()


async def _subscribe(client: httpx.AsyncClient, token: str, endpoint: str, browser: Browser) -> None:
    variables = {"i": {"endpoint": endpoint, "keys": browser.keys(), "userAgent": "Firefox/140"}}
    data = (await gql_data(client, REGISTER, variables, token=token))["pushSubscriptionRegister"]
    assert data["userErrors"] == [], data


async def _send(channel: Any, subscription: PushSubscription, payload: dict[str, Any]) -> Any:
    delivery = new_delivery("push", subscription.id, payload)
    await delivery.save()
    outcome = await channel.send(delivery)
    await channel.after_attempt(delivery, outcome)
    return delivery, outcome


async def test_push_is_decrypted_by_the_subscription_and_carries_a_valid_vapid_token(db, vapid_key):
    async def scenario(client: httpx.AsyncClient, service: PushService, channel: Any, base: str) -> None:
        token = await new_resident(client)
        browser = Browser()
        endpoint = f"{base}/push/abc123"
        await _subscribe(client, token, endpoint, browser)
        mine = await gql_data(client, MINE, token=token)
        assert mine["webPushPublicKey"] == service.vapid_public
        assert mine["myPushSubscriptions"] == [{"endpoint": endpoint, "userAgent": "Firefox/140"}]
        subscription = await PushSubscription.get(endpoint=endpoint)
        message = {
            "title": "案件已受理",
            "body": "您的举报已受理",
            "url": "/cases/Q2FzZTox",
            "notification": 7,
        }
        _, outcome = await _send(channel, subscription, message)
        assert outcome.result is Result.DELIVERED and outcome.status_code == 201
        ((path, _, body),) = service.received
        assert path == "/push/abc123"
        assert json.loads(browser.decrypt(body)) == message
        assert b"title" not in body  # encrypted on the wire
        await subscription.refresh_from_db()
        assert subscription.last_success_at is not None
        # another browser's keys cannot read it
        with pytest.raises(InvalidTag):
            Browser().decrypt(body)

    await _run(vapid_key, db, scenario)


async def test_expired_subscription_is_gone_and_removed(db, vapid_key):
    async def scenario(client: httpx.AsyncClient, service: PushService, channel: Any, base: str) -> None:
        token = await new_resident(client)
        endpoint = f"{base}/push/expired"
        await _subscribe(client, token, endpoint, Browser())
        service.answers["/push/expired"] = 410
        subscription = await PushSubscription.get(endpoint=endpoint)
        delivery, outcome = await _send(channel, subscription, {"title": "t", "body": "b"})
        assert outcome.result is Result.GONE and outcome.status_code == 410
        await channel.gone(delivery)  # what the worker does with GONE
        assert not await PushSubscription.filter(endpoint=endpoint).exists()
        again = await channel.send(await Delivery.get(id=delivery.id))
        assert again.result is Result.GONE  # a later delivery to it finds nothing to send to
        assert (await gql_data(client, MINE, token=token))["myPushSubscriptions"] == []

    await _run(vapid_key, db, scenario)


@pytest.mark.parametrize(
    ("status", "result"), [(429, Result.RETRY), (503, Result.RETRY), (400, Result.FAILED)]
)
async def test_push_service_refusals(db, vapid_key, status, result):
    async def scenario(client: httpx.AsyncClient, service: PushService, channel: Any, base: str) -> None:
        token = await new_resident(client)
        endpoint = f"{base}/push/x"
        await _subscribe(client, token, endpoint, Browser())
        service.answers["/push/x"] = status
        _, outcome = await _send(channel, await PushSubscription.get(endpoint=endpoint), {"title": "t"})
        assert outcome.result is result and outcome.status_code == status
        assert await PushSubscription.filter(endpoint=endpoint).exists()

    await _run(vapid_key, db, scenario)


BAD_INPUTS = [
    ({"endpoint": "http://push.example.com/x"}, ["input", "endpoint"]),
    ({"endpoint": "https://127.0.0.1/x"}, ["input", "endpoint"]),
    ({"endpoint": "https://10.1.2.3/x"}, ["input", "endpoint"]),
    ({"endpoint": "https://localhost/x"}, ["input", "endpoint"]),
    ({"endpoint": "not a url"}, ["input", "endpoint"]),
    ({"p256dh": "AAAA"}, ["input", "keys", "p256dh"]),
    ({"p256dh": "!!!not base64!!!"}, ["input", "keys", "p256dh"]),
    ({"auth": b64url(os.urandom(8))}, ["input", "keys", "auth"]),
]


@pytest.mark.parametrize(("change", "field_path"), BAD_INPUTS)
async def test_registration_refuses_bad_endpoints_and_keys(client, change, field_path):
    token = await new_resident(client)
    browser = Browser()
    values = {"endpoint": "https://fcm.googleapis.com/fcm/send/abc", **browser.keys(), **change}
    variables = {
        "i": {"endpoint": values["endpoint"], "keys": {"p256dh": values["p256dh"], "auth": values["auth"]}}
    }
    data = (await gql_data(client, REGISTER, variables, token=token))["pushSubscriptionRegister"]
    assert data["subscription"] is None
    assert [(e["code"], e["field"]) for e in data["userErrors"]] == [("INVALID", field_path)]


async def test_a_user_sees_and_removes_only_their_own(client):
    alice, bob = await new_resident(client), await new_resident(client)
    browser = Browser()
    endpoint = "https://updates.push.services.mozilla.com/wpush/v2/abc"
    variables = {"i": {"endpoint": endpoint, "keys": browser.keys()}}
    assert (await gql_data(client, REGISTER, variables, token=alice))["pushSubscriptionRegister"][
        "userErrors"
    ] == []
    assert (await gql_data(client, MINE, token=bob))["myPushSubscriptions"] == []
    refused = (await gql_data(client, REMOVE, {"e": endpoint}, token=bob))["pushSubscriptionRemove"]
    assert refused["removed"] is False and refused["userErrors"][0]["code"] == "NOT_FOUND"
    assert await PushSubscription.filter(endpoint=endpoint).exists()
    removed = (await gql_data(client, REMOVE, {"e": endpoint}, token=alice))["pushSubscriptionRemove"]
    assert removed == {"removed": True, "userErrors": []}
    anonymous = await gql_data(client, "{ webPushPublicKey }")
    assert anonymous["webPushPublicKey"] is None  # this server has no VAPID key
