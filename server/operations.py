"""What operators and orchestrators ask of a process: `/livez`, `/readyz`, `/metrics`, and the drain.

- `/livez`: the process serves requests (no dependency is asked), 200.
- `/readyz`: it should be sent traffic: the database answers, Redis answers when configured, the media
  store answers; 503 with what failed otherwise, and 503 from the moment it is told to stop (SIGTERM)
  while it finishes what it has (uvicorn answers the requests in flight, the delivery worker its batch).
- `/metrics`: Prometheus' text format (server.metrics), only with `Authorization: Bearer <METRICS_TOKEN>`
  (401 without it); 404 when METRICS_TOKEN is not set.

`/healthz` (server.app) stays as it was: the database and the media store, for existing probes.
These paths are answered before the rate limit, CORS and the token check.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import signal
from collections.abc import Awaitable, Callable
from types import FrameType
from typing import Any

from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send
from tortoise.connection import get_connection

from media.storage import Storage
from server import metrics

log = logging.getLogger("server.operations")

PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"


class Drain:
    """Set when the process is told to stop: readiness answers 503 from then on."""

    def __init__(self) -> None:
        self.draining = False

    def start(self, reason: str) -> None:
        if not self.draining:
            self.draining = True
            log.info("draining (%s): readiness now answers 503", reason)

    def on_signals(self) -> Callable[[], None]:
        """Chain SIGTERM and SIGINT: mark the drain, then let the server's own handler (uvicorn's) stop
        accepting and finish the requests in flight. Returns the undo. Main thread only."""
        previous: dict[int, Any] = {}

        def handler(signum: int, frame: FrameType | None) -> None:
            self.start(signal.Signals(signum).name)
            chained = previous.get(signum)
            if callable(chained):
                chained(signum, frame)

        try:
            for sig in (signal.SIGTERM, signal.SIGINT):
                previous[sig] = signal.signal(sig, handler)
        except ValueError:  # not the main thread (a test's server): the lifespan's end marks the drain
            return lambda: None

        def undo() -> None:
            for sig, old in previous.items():
                signal.signal(sig, old)

        return undo


Check = Callable[[], Awaitable[None]]


class Readiness:
    """The dependency checks of `/readyz`, each bounded by `timeout_seconds`."""

    def __init__(
        self,
        storage: Storage,
        redis_pings: list[Callable[[], Awaitable[bool]]],
        drain: Drain,
        timeout_seconds: float = 2.0,
    ) -> None:
        self.storage = storage
        self.redis_pings = redis_pings
        self.drain = drain
        self.timeout_seconds = timeout_seconds

    async def _database(self) -> None:
        await get_connection("default").execute_query("SELECT 1")

    async def _redis(self) -> None:
        for ping in self.redis_pings:
            if not await ping():
                raise ConnectionError("Redis did not answer PING")

    async def _storage(self) -> None:
        await self.storage.check()

    async def _run(self, name: str, check: Check) -> str:
        try:
            await asyncio.wait_for(check(), self.timeout_seconds)
        except Exception as exc:  # any failure means "not ready"; the log says which and why
            log.warning("readiness: %s unavailable: %r", name, exc)
            return "unreachable"
        return "ok"

    async def __call__(self) -> tuple[int, dict[str, str]]:
        checks: dict[str, Check] = {"database": self._database, "media": self._storage}
        if self.redis_pings:
            checks["redis"] = self._redis
        names = list(checks)
        results = await asyncio.gather(*(self._run(name, checks[name]) for name in names))
        body = dict(zip(names, results, strict=True))
        ready = all(result == "ok" for result in results) and not self.drain.draining
        body["status"] = "ok" if ready else ("draining" if self.drain.draining else "unavailable")
        return (200 if ready else 503), body


class Operations:
    """Pure ASGI: answers the operations paths itself, passes everything else on."""

    def __init__(self, app: ASGIApp, readiness: Readiness, metrics_token: str | None) -> None:
        self.app = app
        self.readiness = readiness
        self.metrics_token = metrics_token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path") if scope["type"] == "http" else None
        if path == "/livez":
            response: Response = JSONResponse({"status": "ok"}, headers={"Cache-Control": "no-store"})
        elif path == "/readyz":
            status, body = await self.readiness()
            response = JSONResponse(body, status_code=status, headers={"Cache-Control": "no-store"})
        elif path == "/metrics":
            response = await self._metrics(scope)
        else:
            return await self.app(scope, receive, send)
        await response(scope, receive, send)

    async def _metrics(self, scope: Scope) -> Response:
        if not self.metrics_token:
            return PlainTextResponse("Not Found", status_code=404)
        header = dict(scope.get("headers") or []).get(b"authorization", b"").decode("latin-1")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            token.strip().encode(), self.metrics_token.encode()
        ):
            return PlainTextResponse(
                "Send Authorization: Bearer <METRICS_TOKEN>.",
                status_code=401,
                headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
            )
        body = await metrics.render()
        return Response(body, media_type=PROMETHEUS_TEXT, headers={"Cache-Control": "no-store"})
