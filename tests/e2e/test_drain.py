"""A graceful stop: on SIGTERM the server's in-process delivery worker finishes the batch it is sending
(each send recorded) before the process exits, and readiness turns 503 from the signal on."""

from __future__ import annotations

import asyncio
import os
import signal
from types import FrameType

from server.operations import Drain
from tests.e2e.conftest import City, eventually
from tests.e2e.helpers import deliveries, new_case
from tests.reports.helpers import resident
from tests.webhooks.conftest import Receiver
from tests.webhooks.helpers import admin_token, registered

ALLOW = {"WEBHOOK_ALLOWED_HOSTS": "127.0.0.1"}


async def test_sigterm_lets_the_delivery_worker_finish_its_batch(city: City, receiver: Receiver) -> None:
    client = await city.server(**ALLOW)  # the delivery worker runs in the server process (the default)
    await registered(client, f"{receiver.url}/slow")
    receiver.delay = 3.0  # each send is in flight for 3 s
    citizen, _ = await resident(client)
    await new_case(client, citizen)
    await eventually(lambda: receiver.in_flight and any(receiver.in_flight.values()), what="a send in flight")

    server = city.servers[0]
    server.terminate()  # SIGTERM while the receiver still holds the sends
    # uvicorn raises the signal again once it has shut down: the exit is by SIGTERM, after the drain
    assert await asyncio.to_thread(server.process.wait, 60) in (0, -signal.SIGTERM)
    log = server.log_path.read_text()
    assert "draining (SIGTERM)" in log

    sent_ids = {r.headers["webhook-id"] for r in receiver.received}
    assert sent_ids, log
    # Read back through a second server that sends nothing itself: every send that reached the receiver
    # was recorded as delivered, none was cut off and left to its lease.
    reader = await city.server(DELIVERY_WORKER_IN_PROCESS="false", **ALLOW)
    found = await deliveries(reader, await admin_token(reader), channel="webhook")
    delivered = [d for d in found if d["status"] == "DELIVERED"]
    assert len(delivered) == len(sent_ids), (found, log)
    assert all(d["attempts"] == 1 for d in delivered)


def test_the_drain_hears_sigterm_and_passes_it_on() -> None:
    heard: list[int] = []

    def server_handler(signum: int, frame: FrameType | None) -> None:  # uvicorn's, in a real server
        heard.append(signum)

    original = signal.signal(signal.SIGTERM, server_handler)
    try:
        drain = Drain()
        undo = drain.on_signals()
        os.kill(os.getpid(), signal.SIGTERM)
        assert drain.draining and heard == [signal.SIGTERM]
        undo()
        assert signal.getsignal(signal.SIGTERM) is server_handler
    finally:
        signal.signal(signal.SIGTERM, original)
