"""Standard Webhooks signatures (https://www.standardwebhooks.com), made by the spec's own library.

Each request carries `webhook-id`, `webhook-timestamp` (Unix seconds) and `webhook-signature`:
`v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`, one per secret that is still valid,
space-separated, so a receiver holding either the new or the old secret during a rotation's overlap
verifies the request.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Sequence
from datetime import datetime

from standardwebhooks.webhooks import Webhook

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32  # the spec asks for 24 to 64 random bytes


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def signature_header(msg_id: str, timestamp: datetime, body: bytes, signing_secrets: Sequence[str]) -> str:
    """The `webhook-signature` value: a signature with each secret, newest first."""
    return " ".join(Webhook(secret).sign(msg_id, timestamp, body) for secret in signing_secrets)


def headers(msg_id: str, timestamp: datetime, body: bytes, signing_secrets: Sequence[str]) -> dict[str, str]:
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(timestamp.timestamp())),
        "webhook-signature": signature_header(msg_id, timestamp, body, signing_secrets),
    }
