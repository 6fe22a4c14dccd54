"""A stand-in for the systems deliveries go to: a real HTTP receiver (Starlette under uvicorn on
127.0.0.1, a free port) told per target what to answer, and a test channel that POSTs to it."""

from __future__ import annotations

import asyncio
import socket
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from delivery.channels import Outcome, Result
from delivery.models import Delivery


@dataclass
class Received:
    target: int
    message_id: str
    body: dict[str, object]


@dataclass
class Receiver:
    """Answers each target by its script: a list of answers used in turn (the last one repeats).
    An answer is a status code, or "sleep:<seconds>" (then 200)."""

    scripts: dict[int, list[int | str]] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)
    in_flight: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    overlaps: list[str] = field(default_factory=list)  # message ids received twice at once
    url: str = ""

    def answer(self, target: int, *answers: int | str) -> None:
        self.scripts[target] = list(answers)

    def ids_for(self, target: int) -> list[str]:
        return [r.message_id for r in self.received if r.target == target]

    async def endpoint(self, request: Request) -> JSONResponse:
        target = int(request.path_params["target"])
        message_id = request.headers["message-id"]
        script = self.scripts.get(target, [200])
        answer = script.pop(0) if len(script) > 1 else script[0]
        self.in_flight[message_id] += 1
        if self.in_flight[message_id] > 1:
            self.overlaps.append(message_id)
        try:
            self.received.append(Received(target, message_id, await request.json()))
            if isinstance(answer, str):
                await asyncio.sleep(float(answer.removeprefix("sleep:")))
                answer = 200
            headers = {"retry-after": "0"} if answer == 429 else {}
            return JSONResponse({"status": answer}, status_code=answer, headers=headers)
        finally:
            self.in_flight[message_id] -= 1


@asynccontextmanager
async def running_receiver() -> AsyncIterator[Receiver]:
    receiver = Receiver()
    app = Starlette(routes=[Route("/targets/{target}", receiver.endpoint, methods=["POST"])])
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    receiver.url = f"http://127.0.0.1:{port}"
    try:
        yield receiver
    finally:
        server.should_exit = True
        await task


class PostChannel:
    """A channel as webhooks or SMS providers build theirs: one POST per delivery, its id in a header."""

    def __init__(self, base_url: str, name: str = "test") -> None:
        self.name = name
        self.base_url = base_url
        self.http = httpx.AsyncClient(timeout=30)
        self.gone_targets: list[int] = []
        self.after: list[tuple[int, Result]] = []

    async def send(self, delivery: Delivery) -> Outcome:
        try:
            response = await self.http.post(
                f"{self.base_url}/targets/{delivery.target_id}",
                json=delivery.payload,
                headers={"message-id": f"msg_{delivery.id}"},
            )
        except httpx.TransportError as exc:
            return Outcome(Result.RETRY, error=f"unreachable: {exc!r}")
        code = response.status_code
        if code < 300:
            return Outcome(Result.DELIVERED, status_code=code)
        if code == 410:
            return Outcome(Result.GONE, status_code=code)
        if code == 429 or code >= 500:
            retry_after = response.headers.get("retry-after")
            return Outcome(
                Result.RETRY, status_code=code, retry_after=float(retry_after) if retry_after else None
            )
        return Outcome(Result.FAILED, status_code=code, error=f"refused: {code}")

    async def gone(self, delivery: Delivery) -> None:
        self.gone_targets.append(delivery.target_id)

    async def after_attempt(self, delivery: Delivery, outcome: Outcome) -> None:
        self.after.append((delivery.id, outcome.result))

    async def close(self) -> None:
        await self.http.aclose()
