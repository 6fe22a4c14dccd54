"""SMS through Alibaba Cloud and Tencent Cloud: each adapter against a local fake that recomputes the
documented signature; success, a refusal (FAILED), throttling (RETRY after a wait), a wrong secret,
and a closure notice in the resident's language from the templates file."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from delivery.channels import Channel, Result
from delivery.service import new_delivery
from identity.models import Role, User
from kernel import clock
from notifications.sms.base import DEFAULT_TEMPLATES_FILE
from server.channels import notification_channels
from tests.conftest import make_settings
from tests.notifications.fakes import serve
from tests.notifications.sms_fakes import AliyunFake, TencentFake

PHONE = "+8613800138000"
TEMPLATES = json.loads(DEFAULT_TEMPLATES_FILE.read_text(encoding="utf-8"))


@pytest_asyncio.fixture(params=["aliyun", "tencent"])
async def provider(request: pytest.FixtureRequest) -> AsyncIterator[tuple[str, Any, Channel, dict[str, Any]]]:
    """(name, fake, sms channel, settings overrides) with the fake serving on a local port."""
    name = request.param
    fake: Any = (
        AliyunFake("LTAI-test", "aliyun-secret")
        if name == "aliyun"
        else TencentFake("AKID-test", "tencent-secret", "1400006666")
    )
    async with serve(fake.app()) as base:
        if name == "aliyun":
            overrides = dict(
                aliyun_access_key_id="LTAI-test",
                aliyun_access_key_secret="aliyun-secret",
                aliyun_sms_endpoint=f"{base}/",
            )
        else:
            overrides = dict(
                tencent_secret_id="AKID-test",
                tencent_secret_key="tencent-secret",
                tencent_sms_app_id="1400006666",
                tencent_sms_endpoint=f"{base}/",
            )
        overrides["sms_provider"] = name
        yield name, fake, sms_channel(**overrides), overrides


def sms_channel(**overrides: Any) -> Channel:
    (channel,) = [c for c in notification_channels(make_settings(**overrides)) if c.name == "sms"]
    return channel


async def resident(phone: str = PHONE) -> int:
    """A resident whose phone number was verified (as `phoneVerificationConfirm` leaves it)."""
    user = await User.create(role=Role.CITIZEN, phone=phone, phone_verified_at=clock.now())
    return user.id


def closure(user_id: int, language: str) -> Any:
    payload = {"template": "case_closed", "params": {"reference": "2026-000123"}, "language": language}
    return new_delivery("sms", user_id, payload)


@pytest.mark.parametrize("language", ["zh-CN", "en"])
async def test_closure_notice_in_the_residents_language(db, provider, language):
    name, fake, channel, _ = provider
    delivery = closure(await resident(), language)
    await delivery.save()
    outcome = await channel.send(delivery)
    assert outcome.result is Result.DELIVERED, outcome
    (sent,) = fake.sent
    assert sent.template == TEMPLATES["templates"]["case_closed"][language][name]
    assert sent.sign_name == TEMPLATES["sign_names"][name][language]
    if name == "aliyun":
        assert sent.phone == "13800138000" and sent.params == {"reference": "2026-000123"}
    else:
        assert sent.phone == PHONE and sent.params == ["2026-000123"]


async def test_provider_refusal_is_failed(db, provider):
    _, fake, channel, _ = provider
    fake.mode = "error"
    delivery = closure(await resident(), "zh-CN")
    await delivery.save()
    outcome = await channel.send(delivery)
    assert (
        outcome.result is Result.FAILED
        and outcome.error
        and "Template" in outcome.error.replace("TEMPLATE", "Template")
    )
    assert fake.sent == []


async def test_throttling_is_retried_after_a_wait(db, provider):
    _, fake, channel, _ = provider
    fake.mode = "throttle"
    delivery = closure(await resident(), "zh-CN")
    await delivery.save()
    outcome = await channel.send(delivery)
    assert outcome.result is Result.RETRY and outcome.retry_after and outcome.retry_after > 0
    fake.mode = "ok"
    assert (await channel.send(delivery)).result is Result.DELIVERED  # the retry goes through


async def test_a_wrong_secret_fails_the_providers_signature_check(db, provider):
    name, fake, _, overrides = provider
    key = "aliyun_access_key_secret" if name == "aliyun" else "tencent_secret_key"
    channel = sms_channel(**{**overrides, key: "not-the-secret"})
    delivery = closure(await resident(), "en")
    await delivery.save()
    outcome = await channel.send(delivery)
    assert outcome.result is Result.FAILED and "Signature" in (outcome.error or "")
    assert fake.sent == []


async def test_no_phone_or_no_template_is_failed_without_calling_the_provider(db, provider):
    _, fake, channel, _ = provider
    nobody = closure(0, "en")
    await nobody.save()
    assert (await channel.send(nobody)).result is Result.FAILED
    unknown = new_delivery(
        "sms", await resident(), {"template": "no_such_kind", "params": {}, "language": "en"}
    )
    await unknown.save()
    outcome = await channel.send(unknown)
    assert outcome.result is Result.FAILED and "no_such_kind" in (outcome.error or "")
    missing = new_delivery("sms", await resident("+8613900139000"), {"template": "case_closed", "params": {}})
    await missing.save()
    assert (await channel.send(missing)).result is Result.FAILED
    assert fake.sent == []


async def test_unreachable_provider_is_retried(db):
    channel = sms_channel(
        sms_provider="tencent",
        tencent_secret_id="a",
        tencent_secret_key="b",
        tencent_sms_app_id="c",
        tencent_sms_endpoint="http://127.0.0.1:9/",
    )
    delivery = closure(await resident(), "en")
    await delivery.save()
    assert (await channel.send(delivery)).result is Result.RETRY
