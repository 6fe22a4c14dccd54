"""Pure ASGI middleware: request ids and access logs, per-client rate limit, lost database connections."""

from __future__ import annotations

import json
import logging
import time
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from identity import audit
from kernel.database import is_connection_lost
from kernel.errors import DomainError, ErrorCode
from kernel.logs import request_id as current_request_id
from server.errors import error_response
from server.ratelimit import Budgets

access_log = logging.getLogger("server.access")
log = logging.getLogger("server")


def _client(scope: Scope) -> str:
    client = scope.get("client")
    return client[0] if client else "-"


class RequestLog:
    """Gives each request an id (echoed as X-Request-ID, on every log line written while handling it,
    and readable by any layer as `kernel.logs.request_id`) and writes one structured access log line.

    It also holds the request's access-log buffer (`identity.audit`): the reads of personal data
    recorded while serving an HTTP request are handed to the app's group writer once the response is
    sent (off the client's wait), which writes them with other requests' a short delay later; without
    a writer they are written at once. WebSockets write their records as they happen.
    """

    def __init__(self, app: ASGIApp, access_writer: audit.GroupWriter | None = None) -> None:
        self.app = app
        self.access_writer = access_writer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        incoming = dict(scope.get("headers") or []).get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if 0 < len(incoming) <= 64 and incoming.isprintable() else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        # Every line logged while handling it carries the id (kernel.logs). Not reset afterwards: the
        # server's own "Exception in ASGI application" is logged after this returns, in the same task
        # (uvicorn runs each request, and each WebSocket connection, in a task of its own).
        current_request_id.set(request_id)
        started = time.perf_counter()
        status = 0

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            if scope["type"] == "http":
                with audit.collecting(self.access_writer):
                    try:
                        await self.app(scope, receive, send_with_id)
                    finally:
                        await self._flush_access_log(request_id)
            else:
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

    @staticmethod
    async def _flush_access_log(request_id: str) -> None:
        """Hand on the request's access-log records, after the response whether it was sent in full or not."""
        try:
            await audit.flush()
        except Exception:  # the answer is gone already: say loudly which request's reads went unrecorded
            log.exception("access log: the reads of request %s could not be recorded", request_id)


class OverBudget(DomainError):
    """A request past its budget, answered 429 with the seconds until the next window."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(ErrorCode.RATE_LIMITED, "Too many requests; slow down.")
        self.headers = {"Retry-After": str(retry_after)}


# Probes and the metrics scrape are never throttled.
UNTHROTTLED = frozenset({"/healthz", "/livez", "/readyz", "/metrics"})


class RateLimit:
    """A fixed-window request budget per client address: shared by every process through Redis when
    configured, else per process (server.ratelimit; a proxy should limit too)."""

    def __init__(self, app: ASGIApp, per_minute: int, budgets: Budgets | None = None) -> None:
        self.app = app
        self.per_minute = per_minute
        self.budgets = budgets or Budgets()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in UNTHROTTLED:
            return await self.app(scope, receive, send)
        allowed, retry_after = await self.budgets.allow("client:" + _client(scope), self.per_minute)
        if not allowed:
            refusal = OverBudget(retry_after)
            return await error_response(refusal, refusal.headers)(scope, receive, send)
        await self.app(scope, receive, send)


class ConnectionLoss:
    """A database connection lost under any HTTP route or the token check answers a JSON 503
    UNAVAILABLE instead of a plain 500; any other exception passes on to the server's handler.

    Mutations report their own loss (with OUTCOME_UNKNOWN where a commit had started), so what
    reaches here is a read, the token check or a plain route, and a retry is the answer.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = False

        async def send_tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, send_tracked)
        except Exception as exc:
            if started or not is_connection_lost(exc):
                raise
            log.warning("database connection lost under %s: %r", scope["path"], exc)
            refusal = DomainError(ErrorCode.UNAVAILABLE, "The database is unreachable; try again shortly.")
            await error_response(refusal, {"Retry-After": "1", "Cache-Control": "no-store"})(
                scope, receive, send
            )
