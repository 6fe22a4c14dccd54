"""The id of the request being served, readable by any layer without importing the server.

The server's RequestLog middleware sets it for each HTTP request and WebSocket; code outside a
request (the worker, jobs, tests calling services) sees None.
"""

from __future__ import annotations

from contextvars import ContextVar

request_id: ContextVar[str | None] = ContextVar("request_id", default=None)


def current_request_id() -> str | None:
    return request_id.get()
