"""Download links of finished exports: the path, an expiry and an HMAC-SHA256 signature over the
job, its owner and the expiry. A link works until it expires, and only for its owner's requests
(the route also asks who is calling), so a forwarded or leaked link reads nothing for anyone else."""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime, timedelta
from urllib.parse import urlencode

PREFIX = "/exports"


def _signature(secret: str, job_id: int, owner_id: int, expires: int) -> str:
    message = f"export:{job_id}:{owner_id}:{expires}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def download_path(secret: str, job_id: int, owner_id: int, now: datetime, ttl: timedelta) -> str:
    expires = int((now + ttl).timestamp())
    query = urlencode({"expires": expires, "signature": _signature(secret, job_id, owner_id, expires)})
    return f"{PREFIX}/{job_id}/download?{query}"


def link_valid(secret: str, job_id: int, owner_id: int, expires: str, signature: str, now: datetime) -> bool:
    """Whether the link's signature is ours for this job and owner, and it has not expired."""
    if not expires.isdigit() or int(expires) < now.timestamp():
        return False
    return hmac.compare_digest(_signature(secret, job_id, owner_id, int(expires)), signature)
