"""The webhook channel: one signed POST per delivery, and the endpoint's health.

`send` answers how the call went (the worker retries, dead-letters and logs):
- 2xx: DELIVERED;
- 410 Gone: GONE, and `gone` disables the endpoint;
- 408, 429, 5xx, a timeout or a connection error: RETRY (a `Retry-After` in seconds or as a date is
  passed on);
- any other answer (other 4xx, a 3xx: redirects are not followed), an address the guard refuses, or a
  disabled or removed endpoint: FAILED.

`after_attempt` counts failed attempts in a row per endpoint; past the limit the endpoint is disabled,
its pending deliveries are cancelled and a `webhook_endpoint.disabled` event is written. A success
resets the count.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import ssl
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx
from tortoise.expressions import F

from delivery.channels import Outcome, Result
from delivery.models import Delivery
from kernel import clock
from kernel.database import atomic
from webhooks import signing
from webhooks.addresses import AddressRefused, AllowList, IPAddress, Target, check_url
from webhooks.endpoints import CHANNEL, disable, signing_secrets, signing_secrets_of
from webhooks.models import WebhookEndpoint

RETRY_STATUSES = frozenset({408, 425, 429})
MAX_RETRY_AFTER_SECONDS = 24 * 3600
USER_AGENT = "envcase-webhooks/1"


@dataclass(frozen=True)
class WebhookConfig:
    """What the server's settings say about webhooks (webhooks never reads server settings itself)."""

    allow: AllowList = field(default_factory=AllowList)
    timeout_seconds: float = 10.0
    failure_limit: int = 20
    keepalive_per_host: int = 64  # idle connections kept open per receiver host


@dataclass(frozen=True)
class _Prepared:
    """An endpoint's part of a batch: where and with which secrets to send, or why nothing goes out."""

    url: str = ""
    target: Target | None = None
    # Per checked address, in turn: the pinned URL, Host header and TLS name (`_pinned`), built once.
    pinned: list[tuple[httpx.URL, dict[str, str], dict[str, str]]] = field(default_factory=list)
    secrets: list[str] = field(default_factory=list)
    refusal: str = ""


def message_id(delivery: Delivery) -> str:
    """The `webhook-id`: the delivery's own, the same on every retry and replay (receivers dedupe)."""
    return f"msg_{delivery.id}"


def body_of(delivery: Delivery) -> bytes:
    return json.dumps(delivery.payload, ensure_ascii=False, separators=(",", ":")).encode()


def retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds()
        except (TypeError, ValueError):
            return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_SECONDS)


def _pinned(url: str, target: Target, address: IPAddress) -> tuple[httpx.URL, dict[str, str], dict[str, str]]:
    """The URL with its host replaced by a checked address (no second lookup), the Host header, and
    the TLS server name (certificates are still verified against the host in the URL)."""
    original = httpx.URL(url)
    pinned = original.copy_with(host=str(address))
    host_header = original.netloc.decode("ascii")
    extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
    return pinned, {"Host": host_header}, extensions


class WebhookChannel:
    name = CHANNEL

    # Connections are pooled per host name: a pooled connection is keyed by address, and one opened
    # for another name's TLS session must never carry this name's requests.
    MAX_CLIENTS = 256
    # Each host's connections are split over this many clients, taken in turn: httpcore's pool scans
    # every connection for every request in flight (quadratic in the sends in flight to one host),
    # which with one client took most of a send's CPU at 32 sends in flight.
    CLIENTS_PER_HOST = 8

    def __init__(self, config: WebhookConfig) -> None:
        self.config = config
        self._clients: OrderedDict[str, tuple[list[httpx.AsyncClient], itertools.cycle[int]]] = OrderedDict()
        self._tls: ssl.SSLContext | None = None  # one context for every client (each would load the CAs)
        self._batch: dict[int, _Prepared] = {}  # endpoint id -> what the batch in flight loaded

    def _new_client(self) -> httpx.AsyncClient:
        if self._tls is None:
            self._tls = httpx.create_ssl_context(trust_env=False)
        return httpx.AsyncClient(
            timeout=httpx.Timeout(self.config.timeout_seconds),
            follow_redirects=False,
            trust_env=False,  # no proxy from the environment: it would bypass the address guard
            verify=self._tls,
            headers={"User-Agent": USER_AGENT},
            # Keep as many connections open as a worker sends at once (httpx keeps 20 per client):
            # past that, each send would open a connection and close it after one request.
            limits=httpx.Limits(
                max_connections=100,
                max_keepalive_connections=max(1, self.config.keepalive_per_host // self.CLIENTS_PER_HOST),
            ),
        )

    async def _client_for(self, host: str) -> httpx.AsyncClient:
        pooled = self._clients.get(host)
        if pooled is not None:
            self._clients.move_to_end(host)  # the most recently used last
        else:
            clients = [self._new_client() for _ in range(self.CLIENTS_PER_HOST)]
            pooled = self._clients[host] = (clients, itertools.cycle(range(len(clients))))
            if len(self._clients) > self.MAX_CLIENTS:  # the least recently used host's connections go
                _, (oldest, _) = self._clients.popitem(last=False)
                for client in oldest:
                    await client.aclose()
        clients, turn = pooled
        return clients[next(turn)]

    async def aclose(self) -> None:
        """Close the pooled connections (when the worker stops)."""
        pools, self._clients = list(self._clients.values()), OrderedDict()
        for clients, _ in pools:
            for client in clients:
                await client.aclose()

    async def prepare(self, deliveries: Sequence[Delivery]) -> None:
        """Load the batch's endpoints, their signing secrets and checked addresses in two queries and
        one check per endpoint (`delivery.channels.Preparing`); they serve this batch's sends only."""
        self._batch = {}
        ids = sorted({delivery.target_id for delivery in deliveries})
        endpoints = {e.id: e for e in await WebhookEndpoint.filter(id__in=ids)}
        secrets = await signing_secrets_of(ids, clock.now())
        batch: dict[int, _Prepared] = {}
        for endpoint_id in ids:
            endpoint = endpoints.get(endpoint_id)
            batch[endpoint_id] = await self._prepared(endpoint, secrets.get(endpoint_id, []))
        self._batch = batch

    async def _prepared(self, endpoint: WebhookEndpoint | None, secrets: list[str]) -> _Prepared:
        """What every send to `endpoint` needs, or why none can go out."""
        if endpoint is None:
            return _Prepared(refusal="The webhook endpoint was removed.")
        if not endpoint.enabled:
            return _Prepared(refusal=f"The webhook endpoint is disabled: {endpoint.disabled_reason}")
        try:
            target = await check_url(endpoint.url, self.config.allow)
        except AddressRefused as exc:
            return _Prepared(refusal=str(exc))
        if not secrets:
            return _Prepared(refusal="The endpoint has no signing secret.")
        pinned = [_pinned(endpoint.url, target, address) for address in target.addresses]
        return _Prepared(url=endpoint.url, target=target, secrets=secrets, pinned=pinned)

    async def send(self, delivery: Delivery) -> Outcome:
        prepared = self._batch.get(delivery.target_id)
        if prepared is None:  # not prepared with a batch: load for this send alone
            endpoint = await WebhookEndpoint.get_or_none(id=delivery.target_id)
            # Which secrets still sign follows the server's clock; the header carries the real time,
            # which receivers compare with their own clocks.
            secrets = await signing_secrets(endpoint.id, clock.now()) if endpoint else []
            prepared = await self._prepared(endpoint, secrets)
        if prepared.target is None:
            return Outcome(Result.FAILED, error=prepared.refusal)
        target, secrets = prepared.target, prepared.secrets
        now = datetime.now(UTC)
        body = body_of(delivery)
        signed = signing.headers(message_id(delivery), now, body, secrets)
        client = await self._client_for(target.host)
        try:
            async with asyncio.timeout(self.config.timeout_seconds):
                response = await self._post(client, prepared.pinned, body, signed)
        except (TimeoutError, httpx.TimeoutException):
            return Outcome(Result.RETRY, error=f"No answer within {self.config.timeout_seconds:g} s.")
        except httpx.HTTPError as exc:
            return Outcome(Result.RETRY, error=f"{type(exc).__name__}: {exc}"[:500])
        return self._outcome(response)

    @staticmethod
    async def _post(
        client: httpx.AsyncClient,
        pinned: list[tuple[httpx.URL, dict[str, str], dict[str, str]]],
        body: bytes,
        signed: dict[str, str],
    ) -> httpx.Response:
        """POST to the checked addresses in turn, until one accepts the connection."""
        for i, (url, host, extensions) in enumerate(pinned):
            headers = {**host, "Content-Type": "application/json", **signed}
            try:
                return await client.post(url, content=body, headers=headers, extensions=extensions)
            except httpx.ConnectError:
                if i == len(pinned) - 1:
                    raise
        raise AssertionError("a target has at least one address")

    @staticmethod
    def _outcome(response: httpx.Response) -> Outcome:
        code = response.status_code
        if 200 <= code < 300:
            return Outcome(Result.DELIVERED, status_code=code)
        if code == 410:
            return Outcome(Result.GONE, status_code=code, error="The receiver answered 410 Gone.")
        if code in RETRY_STATUSES or code >= 500:
            return Outcome(
                Result.RETRY,
                status_code=code,
                error=f"The receiver answered {code}.",
                retry_after=retry_after(response.headers.get("Retry-After")),
            )
        if 300 <= code < 400:
            return Outcome(Result.FAILED, status_code=code, error=f"Redirect ({code}) not followed.")
        return Outcome(Result.FAILED, status_code=code, error=f"The receiver refused it ({code}).")

    async def gone(self, delivery: Delivery) -> None:
        endpoint = await WebhookEndpoint.get_or_none(id=delivery.target_id)
        if endpoint is None:
            return
        async with atomic():
            await disable(endpoint, "The receiver answered 410 Gone.", except_id=delivery.id)

    async def after_attempts(self, results: Sequence[tuple[Delivery, Outcome]]) -> None:
        """The batch's attempts in delivery id order (`delivery.channels.BatchAware`): endpoints whose
        last attempts succeeded are reset in one query; each endpoint that failed since its last
        success is counted (and disabled past the limit) as `after_attempt` would, attempt by attempt."""
        self._batch = {}  # the batch is sent and recorded: what it loaded may be out of date now
        last_success: dict[int, int] = {}
        failures: dict[int, list[Outcome]] = {}
        for i, (delivery, outcome) in enumerate(results):
            if outcome.result == Result.DELIVERED:
                last_success[delivery.target_id] = i
                failures.pop(delivery.target_id, None)
            elif outcome.result != Result.GONE:  # `gone` disabled the endpoint
                failures.setdefault(delivery.target_id, []).append(outcome)
        if last_success:
            await WebhookEndpoint.filter(id__in=sorted(last_success), consecutive_failures__gt=0).update(
                consecutive_failures=0
            )
        for endpoint_id, outcomes in failures.items():
            for outcome in outcomes:
                await self._failed(endpoint_id, outcome)

    async def after_attempt(self, delivery: Delivery, outcome: Outcome) -> None:
        if outcome.result == Result.DELIVERED:
            await WebhookEndpoint.filter(id=delivery.target_id, consecutive_failures__gt=0).update(
                consecutive_failures=0
            )
            return
        if outcome.result == Result.GONE:
            return  # `gone` disabled it
        await self._failed(delivery.target_id, outcome)

    async def _failed(self, endpoint_id: int, outcome: Outcome) -> None:
        """One more failed attempt in a row; past the limit the endpoint is disabled."""
        async with atomic():
            await WebhookEndpoint.filter(id=endpoint_id, enabled=True).update(
                consecutive_failures=F("consecutive_failures") + 1
            )
            endpoint = await WebhookEndpoint.get_or_none(id=endpoint_id)
            if endpoint and endpoint.enabled and endpoint.consecutive_failures >= self.config.failure_limit:
                await disable(
                    endpoint,
                    f"{endpoint.consecutive_failures} failed attempts in a row; the last: {outcome.error}",
                )
