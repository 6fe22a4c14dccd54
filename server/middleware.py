"""Pure ASGI middleware: request ids and access logs, per-client rate limit, bearer authentication."""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections import OrderedDict
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from identity.config import IdentityConfig
from identity.service import authenticate
from kernel.errors import DomainError

access_log = logging.getLogger("server.access")


def _client(scope: Scope) -> str:
    client = scope.get("client")
    return client[0] if client else "-"


async def _json_error(
    send: Send, status: int, code: str, message: str, headers: list[tuple[bytes, bytes]]
) -> None:
    body = json.dumps({"errors": [{"message": message, "extensions": {"code": code}}]}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class RequestLog:
    """Gives each request an id (echoed as X-Request-ID) and writes one structured access log line."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        incoming = dict(scope.get("headers") or []).get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if 0 < len(incoming) <= 64 and incoming.isprintable() else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status = 0

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            access_log.info(
                json.dumps(
                    {
                        "request_id": request_id,
                        "method": scope.get("method", "WS"),
                        "path": scope["path"],
                        "status": status or (101 if scope["type"] == "websocket" else 500),
                        "ms": round((time.perf_counter() - started) * 1000, 2),
                        "client": _client(scope),
                    }
                )
            )


class RateLimit:
    """A fixed-window request budget per client address, per process (a proxy should limit too)."""

    def __init__(self, app: ASGIApp, per_minute: int, max_clients: int = 100_000) -> None:
        self.app = app
        self.per_minute = per_minute
        self.max_clients = max_clients
        self.windows: OrderedDict[str, tuple[int, int]] = OrderedDict()

    def _allow(self, client: str) -> tuple[bool, int]:
        minute = int(time.time() // 60)
        window, count = self.windows.pop(client, (minute, 0))
        if window != minute:
            window, count = minute, 0
        count += 1
        self.windows[client] = (window, count)
        while len(self.windows) > self.max_clients:
            self.windows.popitem(last=False)
        return count <= self.per_minute, 60 - int(time.time()) % 60

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] == "/healthz":
            return await self.app(scope, receive, send)
        allowed, retry_after = self._allow(_client(scope))
        if not allowed:
            return await _json_error(
                send,
                429,
                "RATE_LIMITED",
                "Too many requests; slow down.",
                [(b"retry-after", str(retry_after).encode())],
            )
        await self.app(scope, receive, send)


class BearerAuth:
    """Authenticates `Authorization: Bearer` on HTTP requests. Cookies are never used.

    No header means an anonymous caller; a bad, expired or revoked token is refused with 401 rather
    than silently treated as anonymous.
    """

    def __init__(self, app: ASGIApp, config: IdentityConfig) -> None:
        self.app = app
        self.config = config

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        header = dict(scope.get("headers") or []).get(b"authorization")
        principal: Any = None
        if header is not None:
            scheme, _, token = header.decode("latin-1").partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                return await self._refuse(send, "Use 'Authorization: Bearer <access token>'.")
            try:
                principal = await authenticate(token.strip(), self.config)
            except DomainError as exc:
                return await self._refuse(send, exc.message)
        scope.setdefault("state", {})["principal"] = principal
        await self.app(scope, receive, send)

    @staticmethod
    async def _refuse(send: Send, message: str) -> None:
        await _json_error(
            send, 401, "UNAUTHENTICATED", message, [(b"www-authenticate", b'Bearer error="invalid_token"')]
        )
