"""Web Push: browsers' and apps' subscriptions, and the "push" channel that sends to them.

Messages are encrypted for the subscription (RFC 8291, `aes128gcm` content coding of RFC 8188) and
the request carries a VAPID token (RFC 8292) signed with the server's key, whose public half clients
pass to `PushManager.subscribe` as `applicationServerKey`.
"""

from __future__ import annotations

import base64
import binascii
import functools
import ipaddress
import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import http_ece  # type: ignore[import-untyped]
import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from delivery.channels import Outcome, Result
from delivery.models import Delivery
from identity.models import User
from kernel import clock
from kernel.errors import invalid, not_found
from notifications.models import PushSubscription

log = logging.getLogger("notifications.push")

# A push message body is at most 4096 bytes (RFC 8030 section 7.2 lets services refuse more); one
# aes128gcm record of that size holds this much plaintext (header 86, tag 16, delimiter 1).
MAX_PLAINTEXT = 4096 - 86 - 16 - 1
VAPID_TOKEN_SECONDS = 12 * 3600  # RFC 8292: at most 24 hours


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def load_vapid_key(text: str) -> ec.EllipticCurvePrivateKey:
    """A P-256 private key from PEM, or base64url of the raw 32-byte scalar (web-push's format)."""
    text = text.strip()
    if text.startswith("-----BEGIN"):
        key = serialization.load_pem_private_key(text.encode(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
            raise ValueError("the VAPID key must be an EC P-256 private key")
        return key
    raw = b64url_decode(text)
    if len(raw) != 32:
        raise ValueError("the VAPID key must be PEM or base64url of a 32-byte P-256 private key")
    return ec.derive_private_key(int.from_bytes(raw, "big"), ec.SECP256R1())


def public_key_b64(key: ec.EllipticCurvePrivateKey) -> str:
    """The uncompressed public point, base64url: the `applicationServerKey` clients subscribe with."""
    raw = key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return b64url(raw)


@functools.cache
def vapid_key_from(text: str | None, path: Path | None) -> ec.EllipticCurvePrivateKey | None:
    """The configured VAPID key (settings VAPID_PRIVATE_KEY or VAPID_PRIVATE_KEY_FILE), if any."""
    if text:
        return load_vapid_key(text)
    if path is not None:
        return load_vapid_key(path.read_text())
    return None


def web_push_public_key(text: str | None, path: Path | None) -> str | None:
    key = vapid_key_from(text, path)
    return public_key_b64(key) if key is not None else None


@dataclass
class PushConfig:
    vapid_key: ec.EllipticCurvePrivateKey
    subject: str  # mailto: or https: contact for the push services (RFC 8292 section 2.1)
    ttl_seconds: int = 24 * 3600
    allow_insecure: bool = False  # tests: http:// and loopback endpoints
    timeout_seconds: float = 10
    _tokens: dict[str, tuple[str, float]] = field(default_factory=dict, repr=False)

    def vapid_token(self, audience: str) -> str:
        """A VAPID JWT for one push service origin, reused until an hour before it expires."""
        now = time.time()
        cached = self._tokens.get(audience)
        if cached is not None and cached[1] - 3600 > now:
            return cached[0]
        expires = now + VAPID_TOKEN_SECONDS
        claims = {"aud": audience, "exp": int(expires), "sub": self.subject}
        token = jwt.encode(claims, self.vapid_key, algorithm="ES256", headers={"typ": "JWT"})
        self._tokens[audience] = (token, expires)
        return token


def check_endpoint(endpoint: str, *, allow_insecure: bool) -> str:
    """The endpoint if a push service could own it: https, a host name or public address."""
    try:
        parts = urlsplit(endpoint)
        host = parts.hostname
    except ValueError:
        raise invalid("The endpoint is not a URL.", "input", "endpoint") from None
    if len(endpoint) > 1024 or not host:
        raise invalid("The endpoint is not a push service URL.", "input", "endpoint")
    if allow_insecure:
        if parts.scheme not in ("https", "http"):
            raise invalid("The endpoint must be an https URL.", "input", "endpoint")
        return endpoint
    if parts.scheme != "https" or parts.username or parts.password:
        raise invalid("The endpoint must be an https URL.", "input", "endpoint")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        if host == "localhost" or host.endswith((".localhost", ".local", ".internal")) or "." not in host:
            raise invalid(
                "The endpoint must be a push service's public address.", "input", "endpoint"
            ) from None
        return endpoint
    if not address.is_global:
        raise invalid("The endpoint must be a push service's public address.", "input", "endpoint")
    return endpoint


def _check_keys(p256dh: str, auth: str) -> None:
    try:
        point = b64url_decode(p256dh)
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
        if len(point) != 65:
            raise ValueError("not an uncompressed point")
    except (ValueError, binascii.Error):
        raise invalid("p256dh must be a base64url P-256 public key.", "input", "keys", "p256dh") from None
    try:
        secret = b64url_decode(auth)
    except (ValueError, binascii.Error):
        secret = b""
    if len(secret) != 16:
        raise invalid("auth must be a base64url 16-byte secret.", "input", "keys", "auth")


async def register_subscription(
    user: User, endpoint: str, p256dh: str, auth: str, user_agent: str, *, allow_insecure: bool
) -> PushSubscription:
    """Save the caller's subscription; an endpoint already known (the browser signed in as someone
    else, or renewed its keys) now belongs to the caller with these keys."""
    check_endpoint(endpoint, allow_insecure=allow_insecure)
    _check_keys(p256dh, auth)
    user_agent = user_agent[:200]
    existing = await PushSubscription.get_or_none(endpoint=endpoint)
    if existing is not None:
        existing.user_id = user.id
        existing.p256dh, existing.auth, existing.user_agent = p256dh, auth, user_agent
        await existing.save(update_fields=["user_id", "p256dh", "auth", "user_agent"])
        return existing
    return await PushSubscription.create(
        user=user, endpoint=endpoint, p256dh=p256dh, auth=auth, user_agent=user_agent, created_at=clock.now()
    )


async def remove_subscription(user: User, endpoint: str) -> None:
    if not await PushSubscription.filter(user_id=user.id, endpoint=endpoint).delete():
        raise not_found("push subscription", "input", "endpoint")


async def subscriptions_of(user: User) -> list[PushSubscription]:
    return await PushSubscription.filter(user_id=user.id).order_by("id")


def encrypt(plaintext: bytes, p256dh: str, auth: str) -> bytes:
    """RFC 8291: ECDH with a fresh key pair against the subscription's key, aes128gcm, one record."""
    receiver = b64url_decode(p256dh)
    sender = ec.generate_private_key(ec.SECP256R1())
    body: bytes = http_ece.encrypt(
        plaintext,
        salt=os.urandom(16),
        private_key=sender,
        dh=receiver,
        auth_secret=b64url_decode(auth),
        version="aes128gcm",
        rs=4096,
    )
    return body


def _origin(endpoint: str) -> str:
    parts = urlsplit(endpoint)
    return f"{parts.scheme}://{parts.netloc}"


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after", "")
    return float(value) if value.isdigit() else None


class PushChannel:
    """The "push" channel: `Delivery.target_id` is a `PushSubscription`, the payload its message
    ({"title", "body", "url", "notification"}), sent as JSON."""

    name = "push"

    def __init__(self, config: PushConfig, client: httpx.AsyncClient | None = None) -> None:
        self.config = config
        self.client = client or httpx.AsyncClient(timeout=config.timeout_seconds, follow_redirects=False)

    async def send(self, delivery: Delivery) -> Outcome:
        subscription = await PushSubscription.get_or_none(id=delivery.target_id)
        if subscription is None:
            return Outcome(Result.GONE, error="the subscription was removed")
        try:
            check_endpoint(subscription.endpoint, allow_insecure=self.config.allow_insecure)
        except Exception:
            return Outcome(Result.FAILED, error="the endpoint is not a push service URL")
        plaintext = json.dumps(delivery.payload, ensure_ascii=False, separators=(",", ":")).encode()
        if len(plaintext) > MAX_PLAINTEXT:
            too_big = f"the message is {len(plaintext)} bytes, over {MAX_PLAINTEXT}"
            return Outcome(Result.FAILED, error=too_big)
        body = encrypt(plaintext, subscription.p256dh, subscription.auth)
        token = self.config.vapid_token(_origin(subscription.endpoint))
        headers = {
            "TTL": str(self.config.ttl_seconds),
            "Content-Encoding": "aes128gcm",
            "Content-Type": "application/octet-stream",
            "Urgency": "normal",
            "Authorization": f"vapid t={token}, k={public_key_b64(self.config.vapid_key)}",
        }
        try:
            response = await self.client.post(subscription.endpoint, content=body, headers=headers)
        except httpx.HTTPError as exc:
            return Outcome(Result.RETRY, error=f"push service unreachable: {type(exc).__name__}")
        status = response.status_code
        if 200 <= status < 300:
            return Outcome(Result.DELIVERED, status_code=status)
        error = f"push service answered {status}: {response.text[:200]}"
        if status in (404, 410):
            return Outcome(Result.GONE, status_code=status, error=error)
        if status == 429 or status >= 500:
            return Outcome(Result.RETRY, status_code=status, error=error, retry_after=_retry_after(response))
        return Outcome(Result.FAILED, status_code=status, error=error)

    async def gone(self, delivery: Delivery) -> None:
        """An expired or unsubscribed subscription (404/410) is deleted."""
        await PushSubscription.filter(id=delivery.target_id).delete()

    async def after_attempt(self, delivery: Delivery, outcome: Outcome) -> None:
        if outcome.result is Result.DELIVERED:
            await PushSubscription.filter(id=delivery.target_id).update(last_success_at=clock.now())

    async def aclose(self) -> None:
        await self.client.aclose()
