"""Logs fit for production (issue 15, item 6), read from a real production server's output.

A resident registers a device, verifies a phone number with a code sent by SMS (Alibaba Cloud's fake),
is refused (FORBIDDEN, NOT_FOUND, a bad variable carrying a phone number); then the server's log
holds no phone number, code or token, every line written for a request carries that request's id,
and refusals are INFO lines without a traceback. A bug's traceback carries the id on every line.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from kernel.logs import Formatter, RequestIdFilter, logging_config, redact
from server.middleware import RequestLog
from tests.api.test_live_updates import Socket
from tests.notifications.fakes import serve
from tests.notifications.sms_fakes import AliyunFake
from tests.servers import Server

DEVICE_REGISTER = """mutation($input: DeviceRegisterInput!) {
  deviceRegister(input: $input) { accessToken refreshToken userErrors { code message } } }"""
PHONE_START = """mutation($p: String!) { phoneVerificationStart(input: {phone: $p}) {
  expiresAt userErrors { code field message } } }"""
PHONE_CONFIRM = """mutation($p: String!, $c: String!) { phoneVerificationConfirm(input: {phone: $p, code: $c}) {
  user { id phone } userErrors { code field message } } }"""
REFRESH = """mutation($t: String!) { tokenRefresh(input: {refreshToken: $t}) {
  accessToken refreshToken userErrors { code } } }"""
PHONE = "13800138000"
LINE = re.compile(r"^\S+ \S+ (?P<level>[A-Z]+) (?P<logger>\S+) \[(?P<rid>[^\]]+)\] (?P<message>.*)$")


async def _post(
    client: httpx.AsyncClient, query: str, variables: dict[str, Any], token: str | None = None
) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = await client.post("/graphql", json={"query": query, "variables": variables}, headers=headers)
    return response


async def test_a_production_server_logs_no_personal_data_and_every_request_line_has_its_id(
    tmp_path: Path,
) -> None:
    fake = AliyunFake("LTAI-logs", "logs-secret")
    async with serve(fake.app()) as base:
        server = Server(
            tmp_path,
            env={
                "ENVIRONMENT": "production",
                "SECRET_KEY": "s" * 64,
                "REDIS_URL": "",
                "OTP_SENDER": "sms",
                "SMS_PROVIDER": "aliyun",
                "ALIYUN_ACCESS_KEY_ID": "LTAI-logs",
                "ALIYUN_ACCESS_KEY_SECRET": "logs-secret",
                "ALIYUN_SMS_ENDPOINT": f"{base}/",
                "DELIVERY_POLL_SECONDS": "0.1",
            },
            name="production",
        )
        secrets_seen: list[str] = [PHONE]
        request_ids: dict[str, str] = {}  # what each request was -> its id
        try:
            await asyncio.to_thread(server.wait_ready)
            async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
                device_key = secrets.token_urlsafe(32)
                answer = await _post(client, DEVICE_REGISTER, {"input": {"deviceKey": device_key}})
                request_ids["register"] = answer.headers["x-request-id"]
                auth = answer.json()["data"]["deviceRegister"]
                token, refresh = auth["accessToken"], auth["refreshToken"]
                secrets_seen += [device_key, token, refresh]

                answer = await _post(client, PHONE_START, {"p": "138 0013 8000"}, token)
                assert answer.json()["data"]["phoneVerificationStart"]["userErrors"] == []
                request_ids["start"] = answer.headers["x-request-id"]
                for _ in range(200):  # the in-process delivery worker sends it
                    if fake.sent:
                        break
                    await asyncio.sleep(0.05)
                (sent,) = fake.sent
                code = sent.params["code"]
                secrets_seen.append(code)
                answer = await _post(client, PHONE_CONFIRM, {"p": "+86" + PHONE, "c": code}, token)
                assert answer.json()["data"]["phoneVerificationConfirm"]["userErrors"] == []
                # a wrong code, a bad variable carrying a number, a refusal, a missing object
                answer = await _post(client, PHONE_CONFIRM, {"p": "+86" + PHONE, "c": "000000"}, token)
                request_ids["wrong code"] = answer.headers["x-request-id"]
                answer = await _post(client, PHONE_START, {"p": ["+8613912345678"]}, token)
                request_ids["bad variable"] = answer.headers["x-request-id"]
                secrets_seen.append("13912345678")
                answer = await _post(client, "{ routingRules { nodes { id } } }", {}, token)
                assert answer.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
                request_ids["forbidden"] = answer.headers["x-request-id"]
                answer = await client.get(
                    "/media/photos/999999/original", headers={"Authorization": f"Bearer {token}"}
                )
                assert answer.status_code == 404
                request_ids["not found"] = answer.headers["x-request-id"]
                answer = await _post(client, REFRESH, {"t": refresh})
                fresh = answer.json()["data"]["tokenRefresh"]
                secrets_seen += [fresh["accessToken"], fresh["refreshToken"]]
            # over the WebSocket: an operation's lines carry the connection's id
            socket = await Socket.open(server, fresh["accessToken"])
            await socket.subscribe("ws1", "query { routingRules { nodes { id } } }", {})
            message = await socket.receive()
            assert message["payload"]["errors"][0]["extensions"]["code"] == "FORBIDDEN", message
            await socket.connection.close()
            await asyncio.sleep(0.3)  # the access line is written when the connection ends
        finally:
            server.stop()
    log = server.log_path.read_text()

    for secret in secrets_seen:
        assert secret not in log, secret
    assert not re.search(
        r"(?<![\w+])(\+?86)?1[3-9]\d{9}(?!\w)", log
    )  # no number at all (hex addresses aside)
    assert "Traceback" not in log  # nothing here was a bug

    lines = [LINE.match(line) for line in log.splitlines()]
    assert all(lines), [line for line in log.splitlines() if not LINE.match(line)]
    by_request: dict[str, list[re.Match[str]]] = {}
    for line in lines:
        assert line is not None
        by_request.setdefault(line["rid"], []).append(line)
    for what, rid in request_ids.items():
        assert any(m["logger"] == "server.access" for m in by_request[rid]), what
    # every line a request wrote carries its id: the refusals' lines and the access lines
    access = [m for m in lines if m and m["logger"] == "server.access"]
    refusals = [m for m in lines if m and m["logger"] == "schema.errors"]
    assert refusals and all(m["rid"] in {m["rid"] for m in access} for m in refusals)
    assert {m["level"] for m in refusals} == {"INFO"}
    assert any("FORBIDDEN" in m["message"] and m["rid"] == request_ids["forbidden"] for m in refusals)
    assert all(m["rid"] != "-" and f'"request_id": "{m["rid"]}"' in m["message"] for m in access)
    assert not [m for m in lines if m and m["level"] in ("ERROR", "CRITICAL")]
    (socket_line,) = [m for m in access if '"method": "WS"' in m["message"]]
    forbidden = [m for m in refusals if "FORBIDDEN" in m["message"]]
    assert {m["rid"] for m in forbidden} == {request_ids["forbidden"], socket_line["rid"]}


async def test_a_bugs_traceback_carries_the_request_id_on_every_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A route that raises: the ERROR record (uvicorn's own "Exception in ASGI application" included,
    here the app's) is formatted with the request id on its first line and on each traceback line."""

    async def broken(request: Request) -> Response:
        logging.getLogger("server.test").info("working on it for +8613912345678")
        raise RuntimeError("bug while reading 13912345678")

    app = RequestLog(Starlette(routes=[Route("/broken", broken)]))
    formatter = Formatter(redacting=True)
    caplog.handler.addFilter(RequestIdFilter())
    with caplog.at_level(logging.INFO):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            response = await client.get("/broken", headers={"X-Request-ID": "req-42"})
        try:
            raise RuntimeError("simulated server error log")
        except RuntimeError:
            logging.getLogger("uvicorn.error").exception("Exception in ASGI application")
    assert response.status_code == 500 and response.headers["x-request-id"] == "req-42"
    text = "\n".join(formatter.format(record) for record in caplog.records)
    assert "13912345678" not in text and "***78" in text
    traced = [formatter.format(r) for r in caplog.records if r.exc_info]
    assert traced
    for record in traced:
        assert all("[req-42]" in line for line in record.splitlines()), record


def test_the_configuration_sends_uvicorns_loggers_through_the_same_formatter() -> None:
    config = logging_config("INFO", production=True)
    assert config["formatters"]["default"]["redacting"] is True
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        assert config["loggers"][name] == {"handlers": [], "propagate": True, "level": "INFO"}
    assert logging_config("INFO")["formatters"]["default"]["redacting"] is False


@pytest.mark.parametrize(
    ("text", "hidden", "kept"),
    [
        ("one-time code for +86 13800138000", "13800138000", "***00"),
        ("sms to 008613800138000 failed", "13800138000", "***00"),
        ("E.164 +4915112345678 here", "4915112345678", "***78"),
        ("Authorization: Bearer abcdef.ghijkl-123", "abcdef.ghijkl-123", "Bearer <redacted>"),
        ('{"refreshToken": "Zx9_abcdefgh"}', "Zx9_abcdefgh", "<redacted>"),
        ("deviceKey=Zx9_abcdefgh", "Zx9_abcdefgh", "<redacted>"),
        ("jwt eyJhbGciOi.eyJzdWIiOjF9.c2lnbmF0dXJl", "eyJzdWIiOjF9", "<token>"),
        ("{code: '654321'}", "654321", "<redacted>"),
        ("home at 30.245612, 120.141234", "30.245612", "30.24, 120.14"),
    ],
)
def test_redaction_masks_what_must_never_be_written(text: str, hidden: str, kept: str) -> None:
    assert hidden not in redact(text) and kept in redact(text)


def test_redaction_leaves_ids_times_and_durations_alone() -> None:
    line = '2026-12-06 04:02:03,123 INFO server.access [9f3e13812345678aa] {"ms": 12.34, "id": 1733456789012}'
    assert redact(line) == line
