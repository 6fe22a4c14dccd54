"""Operations: /metrics behind its token, /livez and /readyz, request budgets shared through Redis
(and per process when Redis is down), the drain's readiness, and tracing to a real OTLP receiver."""

from __future__ import annotations

import asyncio
import http.server
import logging
import random
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import ClassVar

import httpx
import pytest
from redis.asyncio import Redis
from starlette.applications import Starlette
from tortoise.connection import get_connection
from tortoise.context import TortoiseContext

from server.app import create_app
from server.settings import Limits, Settings
from tests.api.conftest import REDIS_URL
from tests.conftest import IS_POSTGRES, make_settings
from tests.graphql_client import gql_data, new_resident

TOKEN = "metrics-token-for-tests-0123456789"


def _client(app: Starlette, address: str = "127.0.0.1") -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, client=(address, 50000)), base_url="http://testserver"
    )


@pytest.fixture
async def ops_app(db: TortoiseContext, tmp_path: Path) -> AsyncIterator[Starlette]:
    app = create_app(make_settings(media_root=tmp_path / "media", metrics_token=TOKEN), init_db=False)
    yield app
    await app.state.access_writer.close()


async def test_metrics_is_off_without_a_token(client: httpx.AsyncClient) -> None:
    assert (await client.get("/metrics")).status_code == 404
    assert (await client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})).status_code == 404


async def test_metrics_wants_its_token(ops_app: Starlette) -> None:
    async with _client(ops_app) as c:
        missing = await c.get("/metrics")
        wrong = await c.get("/metrics", headers={"Authorization": "Bearer not-the-token"})
        basic = await c.get("/metrics", headers={"Authorization": f"Basic {TOKEN}"})
    assert missing.status_code == wrong.status_code == basic.status_code == 401
    assert missing.headers["www-authenticate"].startswith("Bearer")
    assert "envcase" not in missing.text


async def test_metrics_with_the_token(ops_app: Starlette) -> None:
    async with _client(ops_app) as c:
        token = await new_resident(c)
        await gql_data(c, "query Me { me { id } }", {}, token)
        await c.post("/graphql", json={"query": "query Broken { nope }"})
        response = await c.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    for name in (
        'envcase_graphql_request_seconds_bucket{le="0.001",operation="Me",outcome="ok"}',
        'envcase_graphql_request_seconds_count{operation="-",outcome="rejected"}',
        'envcase_outbox_lag_seconds{stage="published"}',
        'envcase_outbox_lag_seconds{stage="planned"}',
        "envcase_deliveries_pending ",
        "envcase_deliveries_overdue_seconds ",
        "envcase_upload_bytes_total ",
        "envcase_photos_accepted_total ",
        "envcase_track_batches_total ",
        "envcase_track_points_total",
        "envcase_rate_limit_fallbacks_total ",
        "process_cpu_seconds_total ",
    ):
        assert name in text, name
    if IS_POSTGRES:
        assert 'envcase_db_pool_connections{state="max"}' in text


async def test_metrics_count_user_errors_apart(ops_app: Starlette) -> None:
    async with _client(ops_app) as c:
        token = await new_resident(c)
        refused = await gql_data(
            c,
            "mutation Bad($input: SubmitReportInput!) { submitReport(input: $input) { userErrors { code } } }",
            {
                "input": {
                    "clientId": "metrics-user-error",
                    "categoryCode": "NO_SUCH_CATEGORY",
                    "location": {"latitude": 30.0, "longitude": 120.0},
                }
            },
            token,
        )
        assert refused["submitReport"]["userErrors"]
        text = (await c.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})).text
    assert 'envcase_graphql_request_seconds_count{operation="Bad",outcome="user_error"}' in text


async def test_liveness_and_readiness(ops_app: Starlette) -> None:
    async with _client(ops_app) as c:
        live = await c.get("/livez")
        ready = await c.get("/readyz")
        assert (await c.get("/healthz")).status_code == 200  # kept as it was
        ops_app.state.drain.start("test")
        draining = await c.get("/readyz")
        still_live = await c.get("/livez")
    assert live.status_code == 200 and live.json() == {"status": "ok"}
    assert ready.status_code == 200 and ready.json() == {"database": "ok", "media": "ok", "status": "ok"}
    assert draining.status_code == 503 and draining.json()["status"] == "draining"
    assert still_live.status_code == 200


async def test_readiness_fails_when_the_database_is_unreachable(tmp_path: Path) -> None:
    folder = tmp_path / "db"
    # PostgreSQL: nothing listens on port 1. SQLite: the file's folder is replaced by a file once the
    # app runs, and its connection closed, so the next query cannot open the database again.
    url = "postgres://postgres@127.0.0.1:1/nowhere" if IS_POSTGRES else f"sqlite://{folder / 'db.sqlite3'}"
    app = create_app(make_settings(database_url=url, media_root=tmp_path / "media"), init_db=True)
    async with app.router.lifespan_context(app), _client(app) as c:
        if not IS_POSTGRES:
            folder.rename(tmp_path / "gone")
            folder.write_text("not a folder")
            await get_connection("default").close()
        ready = await c.get("/readyz")
        live = await c.get("/livez")
    assert ready.status_code == 503
    assert ready.json() == {"database": "unreachable", "media": "ok", "status": "unavailable"}
    assert live.status_code == 200


async def test_readiness_asks_redis_when_configured(
    db: TortoiseContext, tmp_path: Path, redis: Redis
) -> None:
    up = create_app(make_settings(media_root=tmp_path / "m1", redis_url=REDIS_URL), init_db=False)
    down = create_app(
        make_settings(media_root=tmp_path / "m2", redis_url="redis://127.0.0.1:1/0"), init_db=False
    )
    try:
        async with _client(up) as c:
            ok = await c.get("/readyz")
        async with _client(down) as c:
            failed = await c.get("/readyz")
    finally:
        for app in (up, down):
            await app.state.access_writer.close()
            await app.state.budgets.close()
    assert ok.status_code == 200 and ok.json()["redis"] == "ok"
    assert failed.status_code == 503 and failed.json()["redis"] == "unreachable"


def _limited(settings_dir: Path, redis_url: str, per_minute: int) -> Starlette:
    settings: Settings = make_settings(
        media_root=settings_dir, redis_url=redis_url, limits=Limits(requests_per_minute=per_minute)
    )
    return create_app(settings, init_db=False)


async def test_two_processes_sharing_redis_share_one_budget(
    db: TortoiseContext, tmp_path: Path, redis: Redis
) -> None:
    async for key in redis.scan_iter("envcase:budget*"):
        await redis.delete(key)
    address = f"10.{random.randrange(256)}.{random.randrange(256)}.{random.randrange(1, 255)}"
    first, second = _limited(tmp_path / "a", REDIS_URL, 4), _limited(tmp_path / "b", REDIS_URL, 4)
    try:
        async with _client(first, address) as a, _client(second, address) as b:
            statuses = [
                (
                    await (a if i % 2 == 0 else b).post("/graphql", json={"query": "{ __typename }"})
                ).status_code
                for i in range(6)
            ]
            refused = await b.post("/graphql", json={"query": "{ __typename }"})
            # Another address has its own budget, on either process.
            async with _client(first, "192.0.2.77") as other:
                assert (await other.post("/graphql", json={"query": "{ __typename }"})).status_code == 200
    finally:
        for app in (first, second):
            await app.state.access_writer.close()
            await app.state.budgets.close()
    # Alone, each process would have allowed all six (three each, under four).
    assert statuses == [200, 200, 200, 200, 429, 429]
    assert refused.json()["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert first.state.budgets.shared and second.state.budgets.shared


async def test_redis_down_falls_back_to_per_process_budgets(
    db: TortoiseContext, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from server.ratelimit import fallbacks

    before = fallbacks._value.get()
    app = _limited(tmp_path, "redis://127.0.0.1:1/0", 2)  # nothing listens on port 1
    try:
        with caplog.at_level(logging.WARNING, logger="server.ratelimit"):
            async with _client(app, "198.51.100.9") as c:
                statuses = [
                    (await c.post("/graphql", json={"query": "{ __typename }"})).status_code for _ in range(3)
                ]
    finally:
        await app.state.access_writer.close()
        await app.state.budgets.close()
    assert statuses == [200, 200, 429]  # still limited, by this process alone
    assert not app.state.budgets.shared
    assert fallbacks._value.get() > before
    warnings = [r for r in caplog.records if "request budgets are counted per process" in r.getMessage()]
    assert len(warnings) == 1  # once, not per request


class _Collector(http.server.BaseHTTPRequestHandler):
    """A stand-in OTLP/HTTP collector: keeps what is posted to it."""

    received: ClassVar[list[tuple[str, str, bytes]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        self.received.append((self.path, self.headers.get("content-type", ""), body))
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


async def test_tracing_sends_spans_to_the_configured_collector(db: TortoiseContext, tmp_path: Path) -> None:
    from server import tracing

    collector = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Collector)
    thread = threading.Thread(target=collector.serve_forever, daemon=True)
    thread.start()
    endpoint = f"http://127.0.0.1:{collector.server_address[1]}"
    try:
        app = create_app(
            make_settings(media_root=tmp_path / "media", otel_exporter_otlp_endpoint=endpoint), init_db=False
        )
        async with _client(app) as c:
            await gql_data(c, "query TracedOperation { __typename }")
        await app.state.access_writer.close()
        await asyncio.to_thread(tracing.flush)
    finally:
        collector.shutdown()
        collector.server_close()
    posts = [(path, kind) for path, kind, _ in _Collector.received]
    assert ("/v1/traces", "application/x-protobuf") in posts
    spans = b"".join(body for _, _, body in _Collector.received)
    assert b"TracedOperation" in spans  # strawberry's operation span
    assert b"POST /graphql" in spans  # the ASGI middleware's request span


def test_tracing_is_off_without_an_endpoint() -> None:
    from server import tracing

    settings = make_settings()
    assert tracing.middleware(settings) == [] and tracing.schema_extensions(settings) == []
