"""One-time codes through SMS: with OTP_SENDER=sms a code request writes an "sms" delivery that the
channel sends to the provider (here Alibaba Cloud's fake), the resident uses the code the fake
received, and the finished delivery keeps neither code nor number. The development log sender hides
both in production, and a production server refuses to start with it."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from tortoise.context import TortoiseContext

from delivery.channels import Result
from delivery.models import Delivery, DeliveryStatus
from identity.models import Role, User
from kernel import clock
from notifications.models import Language, NotificationPreference
from server.app import create_app
from server.channels import ConfigurationError, notification_channels
from tests.conftest import make_settings
from tests.graphql_client import gql_data, new_resident
from tests.notifications.fakes import serve
from tests.notifications.sms_fakes import AliyunFake
from tests.servers import Server

PHONE_START = """mutation($p: String!) { phoneVerificationStart(input: {phone: $p}) {
  expiresAt userErrors { code field message } } }"""
PHONE_CONFIRM = """mutation($p: String!, $c: String!) { phoneVerificationConfirm(input: {phone: $p, code: $c}) {
  user { id phone } userErrors { code field message } } }"""
ME = "{ me { id } }"


@pytest_asyncio.fixture
async def aliyun(db: TortoiseContext) -> AsyncIterator[tuple[AliyunFake, dict[str, Any]]]:
    fake = AliyunFake("LTAI-otp", "otp-secret")
    async with serve(fake.app()) as base:
        yield (
            fake,
            {
                "otp_sender": "sms",
                "sms_provider": "aliyun",
                "aliyun_access_key_id": "LTAI-otp",
                "aliyun_access_key_secret": "otp-secret",
                "aliyun_sms_endpoint": f"{base}/",
            },
        )


def api(**overrides: Any) -> httpx.AsyncClient:
    app = create_app(make_settings(**overrides), init_db=False)
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


async def _send_pending(overrides: dict[str, Any]) -> list[Any]:
    """What the delivery worker does with the pending sms deliveries: send, record, report."""
    (channel,) = [c for c in notification_channels(make_settings(**overrides)) if c.name == "sms"]
    outcomes = []
    for delivery in await Delivery.filter(channel="sms", status=DeliveryStatus.PENDING).order_by("id"):
        outcome = await channel.send(delivery)
        if outcome.result is Result.DELIVERED:
            delivery.status, delivery.finished_at = DeliveryStatus.DELIVERED, clock.now()
            await delivery.save(update_fields=["status", "finished_at"])
        await channel.after_attempt(delivery, outcome)
        outcomes.append(outcome)
    return outcomes


@pytest.mark.parametrize("language", [Language.ZH_CN, Language.EN])
async def test_code_goes_out_by_sms_and_verifies_the_phone(aliyun, language, caplog):
    fake, overrides = aliyun
    caplog.set_level(logging.INFO)
    async with api(**overrides) as client:
        token = await new_resident(client)
        user = await User.filter(role=Role.CITIZEN).order_by("-id").first()
        assert user is not None
        user_id = user.id
        await NotificationPreference.create(user_id=user_id, language=language, updated_at=clock.now())
        started = await gql_data(client, PHONE_START, {"p": "138 0013 8000"}, token=token)
        assert started["phoneVerificationStart"]["userErrors"] == []
        (delivery,) = await Delivery.filter(channel="sms")
        assert delivery.status == DeliveryStatus.PENDING and delivery.target_id == user_id
        assert delivery.payload["template"] == "otp" and delivery.payload["phone"] == "+8613800138000"
        assert fake.sent == []  # nothing leaves before the worker sends it

        (outcome,) = await _send_pending(overrides)
        assert outcome.result is Result.DELIVERED
        (sent,) = fake.sent
        assert sent.phone == "13800138000"
        assert sent.template == ("SMS_100101" if language == Language.EN else "SMS_100001")
        code = sent.params["code"]
        assert re.fullmatch(r"\d{6}", code)

        # the finished delivery keeps neither the code nor the number
        stored = await Delivery.get(id=delivery.id)
        assert code not in str(stored.payload) and "13800138000" not in str(stored.payload)

        confirmed = await gql_data(client, PHONE_CONFIRM, {"p": "+8613800138000", "c": code}, token=token)
        assert confirmed["phoneVerificationConfirm"]["userErrors"] == []
        assert confirmed["phoneVerificationConfirm"]["user"]["phone"] == "+8613800138000"
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert code not in logged


async def test_throttled_code_is_retried_and_keeps_its_code_until_finished(aliyun):
    fake, overrides = aliyun
    fake.mode = "throttle"
    async with api(**overrides) as client:
        token = await new_resident(client)
        await gql_data(client, PHONE_START, {"p": "+8613700137000"}, token=token)
        (outcome,) = await _send_pending(overrides)
        assert outcome.result is Result.RETRY and outcome.retry_after
        pending = await Delivery.get(channel="sms")
        assert pending.status == DeliveryStatus.PENDING and pending.payload["params"]["code"] != "***"
        fake.mode = "ok"
        (outcome,) = await _send_pending(overrides)
        assert outcome.result is Result.DELIVERED and len(fake.sent) == 1
        assert (await Delivery.get(channel="sms")).payload["params"] == {"code": "***"}


async def test_production_log_shows_neither_number_nor_code(db, caplog):
    caplog.set_level(logging.INFO)
    # An app built for production (no lifespan here, so no startup refusal) with the log sender.
    async with api(environment="production") as client:
        token = await new_resident(client)
        started = await gql_data(client, PHONE_START, {"p": "+8613600136000"}, token=token)
        assert started["phoneVerificationStart"]["userErrors"] == []
    # And the log SMS provider, in production, for a code delivery.
    overrides = {"environment": "production", "otp_sender": "sms", "sms_provider": "log"}
    from notifications.otp import SmsOtpSender

    await SmsOtpSender().send("+8613600136000", "493817")
    (outcome,) = await _send_pending(overrides)
    assert outcome.result is Result.DELIVERED
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "one-time code" in logged and "SMS otp" in logged  # both senders did write
    assert "13600136000" not in logged and "493817" not in logged
    assert not re.search(r"\b\d{6}\b", logged), logged


async def test_development_log_sms_shows_the_code(db, caplog):
    caplog.set_level(logging.INFO)
    from notifications.otp import SmsOtpSender

    await SmsOtpSender().send("+8613600136000", "493817")
    await _send_pending({"otp_sender": "sms", "sms_provider": "log"})
    assert "493817" in "\n".join(record.getMessage() for record in caplog.records)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"OTP_SENDER": "log"}, "OTP_SENDER=log"),
        ({"OTP_SENDER": "sms", "SMS_PROVIDER": "log"}, "SMS_PROVIDER=log"),
        ({"OTP_SENDER": "sms", "SMS_PROVIDER": "tencent"}, "TENCENT_SECRET_ID"),
    ],
)
def test_production_refuses_to_start_with_the_log_sender(tmp_path: Path, env: dict[str, str], message: str):
    env = {"ENVIRONMENT": "production", "SECRET_KEY": "x" * 48, **env}
    server = Server(tmp_path, env=env)
    code = server.process.wait(timeout=60)
    server.log.close()
    output = server.log_path.read_text()
    assert code != 0 and message in output, output


async def test_production_app_refuses_at_startup(db):
    app = create_app(make_settings(environment="production"), init_db=False)
    with pytest.raises(ConfigurationError, match="OTP_SENDER=log"):
        async with app.router.lifespan_context(app):
            pass
    ok = make_settings(
        environment="production",
        otp_sender="sms",
        sms_provider="aliyun",
        aliyun_access_key_id="a",
        aliyun_access_key_secret="b",
    )
    app = create_app(ok, init_db=False)
    async with app.router.lifespan_context(app):
        pass
