"""The address guard: webhooks may not reach loopback, link-local (cloud metadata), private, shared or
otherwise non-public addresses, by address or by a name resolving there, at registration or at send
time, unless WEBHOOK_ALLOWED_HOSTS lets them."""

from __future__ import annotations

import httpx
import pytest

from delivery.channels import Result
from delivery.models import Delivery
from delivery.service import enqueue, new_delivery
from tests.webhooks.conftest import Receiver
from tests.webhooks.helpers import admin_token, create_endpoint, registered
from webhooks.addresses import AddressRefused, AllowList, check_url, resolve
from webhooks.channel import WebhookChannel, WebhookConfig
from webhooks.models import WebhookEndpoint

REFUSED = [
    "https://127.0.0.1/hook",
    "https://127.1.2.3/hook",
    "https://169.254.169.254/latest/meta-data/",
    "https://10.1.2.3/hook",
    "https://172.16.0.1/hook",
    "https://192.168.1.1/hook",
    "https://100.64.0.1/hook",  # carrier-grade NAT
    "https://0.0.0.0/hook",
    "https://[::1]/hook",
    "https://[::]/hook",
    "https://[fc00::1]/hook",
    "https://[fe80::1]/hook",
    "https://[::ffff:127.0.0.1]/hook",  # IPv4-mapped IPv6
    "https://[::ffff:169.254.169.254]/hook",
    "https://[64:ff9b::a01:203]/hook",  # NAT64 of 10.1.2.3
    "https://[2002:a01:203::1]/hook",  # 6to4 of 10.1.2.3
    "https://224.0.0.1/hook",
    "https://localhost/hook",  # a name resolving to loopback
    "https://localhost./hook",
]


@pytest.mark.parametrize("url", REFUSED)
async def test_non_public_addresses_are_refused(url: str) -> None:
    with pytest.raises(AddressRefused, match="Refused"):
        await check_url(url, AllowList())


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.org/hook",
        "file:///etc/passwd",
        "https://user:pw@8.8.8.8/hook",
        "https:///hook",
        "https://8.8.8.8/hook#x",
        "https://8.8.8.8:99999/hook",
        "https://8.8.8.8/" + "a" * 2100,
        "http://8.8.8.8/hook",  # http only for allow-listed hosts
        "https://does-not-exist.invalid/hook",
    ],
)
async def test_malformed_or_unsafe_urls_are_refused(url: str) -> None:
    with pytest.raises(AddressRefused):
        await check_url(url, AllowList())


async def test_public_addresses_pass() -> None:
    target = await check_url("https://8.8.8.8:8443/hook?x=1", AllowList())
    assert (target.scheme, target.host, target.port) == ("https", "8.8.8.8", 8443)
    await check_url("https://[2606:4700:4700::1111]/hook", AllowList())


async def test_the_allow_list_lets_addresses_and_networks_through() -> None:
    allow = AllowList.parse(["127.0.0.1", "10.0.0.0/8", "[::1]"])
    await check_url("http://127.0.0.1:8080/hook", allow)
    await check_url("https://10.1.2.3/hook", allow)
    await check_url("http://[::1]:9000/hook", allow)
    with pytest.raises(AddressRefused):
        await check_url("https://169.254.169.254/", allow)
    with pytest.raises(AddressRefused):  # the mapped form is not the allow-listed address
        await check_url("https://[::ffff:192.168.0.1]/", allow)
    with pytest.raises(ValueError):
        AllowList.parse(["not-an-address"])


@pytest.mark.usefixtures("demo")
@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/hook",
        "https://169.254.169.254/latest/meta-data/",
        "https://10.1.2.3/hook",
        "https://[::1]/hook",
        "https://localhost/hook",
        "https://[::ffff:127.0.0.1]/hook",
    ],
)
async def test_registration_refuses_them_with_a_user_error(
    strict_client: httpx.AsyncClient, url: str
) -> None:
    result = await create_endpoint(strict_client, await admin_token(strict_client), url)
    assert result["endpoint"] is None and result["secret"] is None
    (error,) = result["userErrors"]
    assert error["code"] == "INVALID" and error["field"] == ["input", "url"]
    assert "Refused" in error["message"] or "https" in error["message"]


@pytest.mark.usefixtures("demo")
async def test_sending_checks_again_and_fails_clearly(client: httpx.AsyncClient, receiver: Receiver) -> None:
    """Registered while allow-listed; a server without the allow-list (or a name that now resolves to
    a private address) refuses at send time, without calling."""
    endpoint_id, _ = await registered(client, receiver.url)
    await enqueue(new_delivery("webhook", endpoint_id, {"type": "case.submitted", "data": {}}))
    delivery = await Delivery.get(target_id=endpoint_id)
    strict = WebhookChannel(WebhookConfig(allow=AllowList()))
    outcome = await strict.send(delivery)
    await strict.aclose()
    assert outcome.result == Result.FAILED
    assert outcome.error is not None and "127.0.0.1 is loopback" in outcome.error
    assert receiver.received == []

    allowed = WebhookChannel(WebhookConfig(allow=AllowList.parse(["127.0.0.1"])))
    assert (await allowed.send(delivery)).result == Result.DELIVERED
    await allowed.aclose()
    assert len(receiver.received) == 1


@pytest.mark.usefixtures("demo")
async def test_an_allow_listed_name_is_called_at_its_checked_address(
    client: httpx.AsyncClient, receiver: Receiver
) -> None:
    """`localhost` may resolve to ::1 first, where nothing listens: the next checked address is tried,
    and the request still names the host it was registered with."""
    port = receiver.url.rsplit(":", 1)[1]
    endpoint_id, _ = await registered(client, f"http://127.0.0.1:{port}/by-name")
    await WebhookEndpoint.filter(id=endpoint_id).update(url=f"http://localhost:{port}/by-name")
    await enqueue(new_delivery("webhook", endpoint_id, {"type": "case.submitted", "data": {}}))
    delivery = await Delivery.get(target_id=endpoint_id)
    sender = WebhookChannel(WebhookConfig(allow=AllowList.parse(["127.0.0.1", "::1"])))
    assert (await sender.send(delivery)).result == Result.DELIVERED
    await sender.aclose()
    (request,) = receiver.received
    assert request.headers["host"] == f"localhost:{port}" and request.path == "/by-name"
    # Without ::1 allowed, a name that also resolves there is refused outright.
    if "::1" in str(await resolve("localhost", int(port))):
        strict = WebhookChannel(WebhookConfig(allow=AllowList.parse(["127.0.0.1"])))
        assert (await strict.send(delivery)).result == Result.FAILED
        await strict.aclose()


def test_the_setting_takes_addresses_and_networks_only(monkeypatch: pytest.MonkeyPatch) -> None:
    from pydantic import ValidationError

    from tests.conftest import make_settings

    monkeypatch.setenv("WEBHOOK_ALLOWED_HOSTS", "127.0.0.1, ::1,10.0.0.0/8")
    assert make_settings().webhook_allowed_hosts == ("127.0.0.1", "::1", "10.0.0.0/8")
    monkeypatch.setenv("WEBHOOK_ALLOWED_HOSTS", "localhost")
    with pytest.raises(ValidationError):
        make_settings()
