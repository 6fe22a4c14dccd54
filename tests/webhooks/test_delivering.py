"""The webhook channel against a real local receiver: signed requests that the Standard Webhooks
library verifies (also with a rotated secret during its overlap), the answers mapped to outcomes,
410 and repeated failures disabling the endpoint, a slow receiver timing out."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import httpx
import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from delivery.channels import Outcome, Result
from delivery.models import Delivery, DeliveryStatus
from delivery.service import enqueue, new_delivery
from kernel import clock
from kernel.outbox import OutboxEvent
from tests.graphql_client import gql
from tests.reports.helpers import db_id, report_input, resident, submit_ok
from tests.webhooks.conftest import Receiver
from tests.webhooks.helpers import ROTATE, admin_token, last_event_id, plan_all, registered
from webhooks.addresses import AllowList
from webhooks.channel import WebhookChannel, WebhookConfig
from webhooks.events import global_id
from webhooks.models import WebhookEndpoint
from webhooks.planning import plan_webhooks

pytestmark = pytest.mark.usefixtures("demo")

LOCAL = AllowList.parse(["127.0.0.1"])


def channel(timeout_seconds: float = 5.0, failure_limit: int = 20) -> WebhookChannel:
    return WebhookChannel(
        WebhookConfig(allow=LOCAL, timeout_seconds=timeout_seconds, failure_limit=failure_limit)
    )


async def a_delivery(endpoint_id: int, n: int = 0) -> Delivery:
    await enqueue(
        new_delivery(
            "webhook",
            endpoint_id,
            {"type": "case.submitted", "timestamp": clock.now().isoformat(), "data": {"n": n, "名": "水"}},
            ordering_key="case:1",
        )
    )
    row = await Delivery.filter(channel="webhook", target_id=endpoint_id).order_by("-id").first()
    assert row is not None
    return row


async def test_a_submitted_report_reaches_the_receiver_signed(
    client: httpx.AsyncClient, receiver: Receiver
) -> None:
    endpoint_id, secret = await registered(client, f"{receiver.url}/hooks")
    assert secret.startswith("whsec_")
    before = await last_event_id()
    token, _ = await resident(client)
    submitted = await submit_ok(client, token, report_input(description="我家楼下 13800138000 施工"))

    deliveries = await plan_all(before)
    types = [d.payload["type"] for d in deliveries]
    assert types[0] == "case.submitted" and "case.routed" in types
    sender = channel()
    for delivery in deliveries:
        assert (await sender.send(delivery)).result == Result.DELIVERED
    await sender.aclose()

    assert [r.path for r in receiver.received] == ["/hooks"] * len(deliveries)
    first = receiver.received[0]
    assert first.headers["webhook-id"] == f"msg_{deliveries[0].id}"
    assert first.headers["content-type"] == "application/json"
    body = Webhook(secret).verify(first.body, first.headers)
    case = body["data"]["case"]
    assert body["type"] == "case.submitted"
    assert case["id"] == submitted["case"]["id"]  # the API's own global id
    assert case["reference"] == submitted["case"]["reference"]
    assert case["category"]["code"] == "noise.construction"
    assert case["department"]["code"] == submitted["case"]["department"]["code"]
    # Nothing personal: no description (it may hold a phone number), no reporter.
    assert "13800138000" not in first.body.decode() and "description" not in case
    assert "reporter" not in first.body.decode().lower().replace("reportercount", "")
    # Tampering is detected; another secret does not verify.
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(first.body.replace(b"case.submitted", b"case.rejected"), first.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook("whsec_" + "A" * 43 + "=").verify(first.body, first.headers)
    assert {d.target_id for d in deliveries} == {endpoint_id}
    assert {d.ordering_key for d in deliveries} == {f"case:{db_id(case['id'])}"}  # in order per case


async def test_the_same_webhook_id_on_every_attempt(client: httpx.AsyncClient, receiver: Receiver) -> None:
    endpoint_id, secret = await registered(client, receiver.url)
    delivery = await a_delivery(endpoint_id)
    sender = channel()
    receiver.status = 503
    assert (await sender.send(delivery)).result == Result.RETRY
    receiver.status = 200
    assert (await sender.send(delivery)).result == Result.DELIVERED
    await sender.aclose()
    ids = {r.headers["webhook-id"] for r in receiver.received}
    assert ids == {f"msg_{delivery.id}"}
    for request in receiver.received:
        assert Webhook(secret).verify(request.body, request.headers)["data"] == {"n": 0, "名": "水"}


async def test_a_rotated_secret_verifies_during_the_overlap_and_not_after(
    client: httpx.AsyncClient, receiver: Receiver
) -> None:
    endpoint_id, old = await registered(client, receiver.url)
    token = await admin_token(client)
    rotated = await gql(
        client,
        ROTATE,
        {"input": {"id": global_id("WebhookEndpoint", endpoint_id), "overlapHours": 2}},
        token=token,
    )
    payload = rotated["data"]["webhookEndpointRotateSecret"]
    assert payload["userErrors"] == []
    new = payload["secret"]
    assert new != old and new.startswith("whsec_")
    assert payload["endpoint"]["previousSecretExpiresAt"] is not None

    sender = channel()
    assert (await sender.send(await a_delivery(endpoint_id, 1))).result == Result.DELIVERED
    during = receiver.received[-1]
    assert len(during.headers["webhook-signature"].split(" ")) == 2
    Webhook(new).verify(during.body, during.headers)
    Webhook(old).verify(during.body, during.headers)  # receivers not yet updated still verify

    later = clock.now() + timedelta(hours=2, seconds=1)
    clock.set_clock(lambda: later)
    assert (await sender.send(await a_delivery(endpoint_id, 2))).result == Result.DELIVERED
    await sender.aclose()
    after = receiver.received[-1]
    assert len(after.headers["webhook-signature"].split(" ")) == 1
    Webhook(new).verify(after.body, after.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(old).verify(after.body, after.headers)


@pytest.mark.parametrize(
    ("status", "result"),
    [
        (200, Result.DELIVERED),
        (204, Result.DELIVERED),
        (500, Result.RETRY),
        (502, Result.RETRY),
        (408, Result.RETRY),
        (429, Result.RETRY),
        (400, Result.FAILED),
        (404, Result.FAILED),
        (301, Result.FAILED),
        (410, Result.GONE),
    ],
)
async def test_answers_map_to_outcomes(
    client: httpx.AsyncClient, receiver: Receiver, status: int, result: Result
) -> None:
    endpoint_id, _ = await registered(client, receiver.url)
    receiver.status = status
    if status == 301:
        receiver.headers = {"Location": "http://169.254.169.254/latest/meta-data/"}
    sender = channel()
    outcome = await sender.send(await a_delivery(endpoint_id))
    await sender.aclose()
    assert outcome.result == result
    assert outcome.status_code == status
    assert len(receiver.received) == 1  # a redirect is not followed


async def test_retry_after_is_passed_on(client: httpx.AsyncClient, receiver: Receiver) -> None:
    endpoint_id, _ = await registered(client, receiver.url)
    receiver.status = 429
    receiver.headers = {"Retry-After": "120"}
    sender = channel()
    outcome = await sender.send(await a_delivery(endpoint_id))
    await sender.aclose()
    assert outcome == Outcome(Result.RETRY, 429, "The receiver answered 429.", retry_after=120.0)


async def test_410_disables_the_endpoint_and_cancels_its_pending_deliveries(
    client: httpx.AsyncClient, receiver: Receiver
) -> None:
    endpoint_id, _ = await registered(client, receiver.url)
    other_id, _ = await registered(client, receiver.url + "/other")
    first = await a_delivery(endpoint_id, 1)
    waiting = await a_delivery(endpoint_id, 2)
    elsewhere = await a_delivery(other_id, 3)
    receiver.status = 410
    sender = channel()
    outcome = await sender.send(first)
    assert outcome.result == Result.GONE
    await sender.gone(first)
    await sender.after_attempt(first, outcome)
    endpoint = await WebhookEndpoint.get(id=endpoint_id)
    assert not endpoint.enabled and "410" in (endpoint.disabled_reason or "")
    assert (await Delivery.get(id=waiting.id)).status == DeliveryStatus.CANCELLED
    assert (await Delivery.get(id=elsewhere.id)).status == DeliveryStatus.PENDING
    # A disabled endpoint is not called again, and hears of nothing new.
    receiver.status = 200
    assert (await sender.send(waiting)).result == Result.FAILED
    await sender.aclose()
    assert len(receiver.received) == 1
    disabled = await OutboxEvent.filter(kind="webhook_disabled").first()
    assert (
        disabled is not None and disabled.subject == "webhook_endpoint" and disabled.subject_id == endpoint_id
    )
    planned = await plan_webhooks(disabled)
    assert [d.target_id for d in planned] == [other_id]
    assert planned[0].payload["type"] == "webhook_endpoint.disabled"


async def test_many_failures_in_a_row_disable_the_endpoint_with_an_event(
    client: httpx.AsyncClient, receiver: Receiver
) -> None:
    endpoint_id, _ = await registered(client, receiver.url, eventTypes=["case.submitted"])
    watcher_id, watcher_secret = await registered(
        client, receiver.url + "/watch", eventTypes=["webhook_endpoint.disabled"]
    )
    sender = channel(failure_limit=3)
    receiver.status_by_path = {"/": 500}
    delivery = await a_delivery(endpoint_id)
    for _ in range(2):
        outcome = await sender.send(delivery)
        await sender.after_attempt(delivery, outcome)
    assert (await WebhookEndpoint.get(id=endpoint_id)).consecutive_failures == 2
    # A success resets the count.
    receiver.status_by_path = {}
    await sender.after_attempt(delivery, await sender.send(delivery))
    assert (await WebhookEndpoint.get(id=endpoint_id)).consecutive_failures == 0

    receiver.status_by_path = {"/": 500}
    before = await last_event_id()
    for _ in range(3):
        outcome = await sender.send(delivery)
        assert outcome.result == Result.RETRY
        await sender.after_attempt(delivery, outcome)
    endpoint = await WebhookEndpoint.get(id=endpoint_id)
    assert not endpoint.enabled
    assert endpoint.disabled_reason is not None and "3 failed attempts in a row" in endpoint.disabled_reason
    assert (await Delivery.get(id=delivery.id)).status == DeliveryStatus.CANCELLED

    # The event reaches the integrator who subscribed to it, signed like any other.
    planned = await plan_all(before)
    assert [d.target_id for d in planned] == [watcher_id]
    assert (await sender.send(planned[0])).result == Result.DELIVERED
    await sender.aclose()
    told = receiver.received[-1]
    body = Webhook(watcher_secret).verify(told.body, told.headers)
    assert body["type"] == "webhook_endpoint.disabled"
    assert body["data"]["webhookEndpoint"]["id"] == global_id("WebhookEndpoint", endpoint_id)
    assert "3 failed attempts" in body["data"]["webhookEndpoint"]["reason"]


async def test_a_slow_receiver_times_out_without_holding_up_others(
    client: httpx.AsyncClient, receiver: Receiver
) -> None:
    slow_id, _ = await registered(client, receiver.url + "/slow")
    fast_id, _ = await registered(client, receiver.url + "/fast")
    receiver.delay_by_path = {"/slow": 30.0}
    sender = channel(timeout_seconds=0.5)
    finished: list[str] = []

    async def send(delivery: Delivery, name: str) -> Outcome:
        outcome = await sender.send(delivery)
        finished.append(name)
        return outcome

    slow_delivery, fast_delivery = await a_delivery(slow_id), await a_delivery(fast_id)
    started = time.monotonic()
    slow, fast = await asyncio.gather(send(slow_delivery, "slow"), send(fast_delivery, "fast"))
    waited = time.monotonic() - started
    await sender.aclose()
    assert fast.result == Result.DELIVERED
    assert slow.result == Result.RETRY and slow.status_code is None
    assert slow.error is not None and "0.5 s" in slow.error
    assert finished == ["fast", "slow"]  # the fast endpoint did not wait for the slow one
    assert waited < 30.0  # given up at the timeout, long before the receiver would answer


async def test_a_prepared_batch_sends_with_what_it_loaded_and_then_forgets_it(
    client: httpx.AsyncClient, receiver: Receiver
) -> None:
    """The worker's batches: endpoints and secrets loaded once (`prepare`), each send signed with its
    own endpoint's secret; once the batch is recorded (`after_attempts`) sends load afresh again."""
    first_id, first_secret = await registered(client, receiver.url + "/first")
    second_id, second_secret = await registered(client, receiver.url + "/second")
    off_id, _ = await registered(client, receiver.url + "/off")
    await WebhookEndpoint.filter(id=off_id).update(enabled=False, disabled_reason="by hand")
    batch = [await a_delivery(first_id, 1), await a_delivery(second_id, 2), await a_delivery(off_id, 3)]
    sender = channel()
    await sender.prepare(batch)
    outcomes = [await sender.send(d) for d in batch]
    assert [o.result for o in outcomes] == [Result.DELIVERED, Result.DELIVERED, Result.FAILED]
    assert outcomes[2].error is not None and "disabled: by hand" in outcomes[2].error
    by_path = {r.path: r for r in receiver.received}
    assert Webhook(first_secret).verify(by_path["/first"].body, by_path["/first"].headers)["data"]["n"] == 1
    assert (
        Webhook(second_secret).verify(by_path["/second"].body, by_path["/second"].headers)["data"]["n"] == 2
    )
    await sender.after_attempts(list(zip(batch, outcomes, strict=True)))

    await WebhookEndpoint.filter(id=first_id).update(enabled=False, disabled_reason="later")
    again = await sender.send(batch[0])
    assert again.result == Result.FAILED and again.error is not None and "later" in again.error
    await sender.aclose()


async def test_a_batch_keeps_endpoint_health_as_its_attempts_one_by_one_would(
    client: httpx.AsyncClient, receiver: Receiver
) -> None:
    recovers_id, _ = await registered(client, receiver.url)
    fails_id, _ = await registered(client, receiver.url)
    await WebhookEndpoint.filter(id=recovers_id).update(consecutive_failures=5)
    r1, f1, r2, f2, f3 = [
        await a_delivery(i, n) for n, i in enumerate([recovers_id, fails_id] * 2 + [fails_id])
    ]
    retry, ok = Outcome(Result.RETRY, error="down"), Outcome(Result.DELIVERED, status_code=200)
    sender = channel(failure_limit=3)
    # Recovers: a failure, then a success (0). Fails: a success, then two failures (2: under the limit).
    await sender.after_attempts([(r1, retry), (f1, ok), (r2, ok), (f2, retry), (f3, Outcome(Result.FAILED))])
    assert (await WebhookEndpoint.get(id=recovers_id)).consecutive_failures == 0
    fails = await WebhookEndpoint.get(id=fails_id)
    assert (fails.consecutive_failures, fails.enabled) == (2, True)
    # One more in the next batch reaches the limit: disabled, as one attempt at a time would.
    await sender.after_attempts([(f3, retry)])
    fails = await WebhookEndpoint.get(id=fails_id)
    assert not fails.enabled
    assert fails.disabled_reason is not None and "3 failed attempts in a row" in fails.disabled_reason
