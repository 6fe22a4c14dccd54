"""The Open311 GeoReport v2 routes under `/open311/v2/` (the rules are in `open311/`).

`services`, `services/{code}`, `requests` (GET and POST), `requests/{id}`, `tokens/{token}`, each with
an optional `.json` or `.xml` suffix; without one, the Accept header chooses (JSON by default). Reads
are public (the public map's view); posting needs a service account's `api_key` with the scope
`open311:write`, within the key's own request budget. Every refusal is the spec's `errors` list.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from identity.service_accounts import OPEN311_WRITE
from kernel import clock
from kernel.errors import DomainError
from open311 import georeport
from open311.formats import Format, Open311Error, negotiate, render_errors, render_list, render_object
from reports.store import Snapshot
from schema.context import Services
from server.auth import service_key_account
from server.middleware import OverBudget
from server.ratelimit import Budgets

PREFIX = "/open311/v2"
_SUFFIXES = {".json": "json", ".xml": "xml"}


def _split(path: str) -> tuple[str, str | None]:
    """The resource path and its format suffix, if any."""
    for suffix, name in _SUFFIXES.items():
        if path.endswith(suffix):
            return path[: -len(suffix)], name
    return path, None


class Open311:
    def __init__(self, services: Services, key_budgets: Budgets) -> None:
        self.services = services
        self.key_budgets = key_budgets

    async def handle(self, request: Request) -> Response:
        resource, suffix = _split(request.path_params["path"])
        fmt = negotiate(suffix, request.headers.get("accept", ""))
        headers: dict[str, str] = {}
        try:
            status, body = await self._answer(request, resource, fmt)
        except Open311Error as exc:
            status, body = exc.status, render_errors(fmt, exc)
            if isinstance(exc.__cause__, OverBudget):
                headers = exc.__cause__.headers
        return Response(body, status_code=status, media_type=fmt.media_type, headers=headers)

    async def _answer(self, request: Request, resource: str, fmt: Format) -> tuple[int, bytes]:
        kind, _, name = resource.partition("/")
        handlers: dict[
            tuple[str, bool, str], Callable[[Request, str, Format], Awaitable[tuple[int, bytes]]]
        ] = {
            ("services", False, "GET"): self._services,
            ("services", True, "GET"): self._definition,
            ("requests", False, "GET"): self._requests,
            ("requests", False, "POST"): self._post,
            ("requests", True, "GET"): self._request,
            ("tokens", True, "GET"): self._token,
        }
        known = {(k, named) for k, named, _ in handlers}
        if (kind, bool(name)) not in known or "/" in name:
            raise Open311Error(404, f"No such resource: {PREFIX}/{resource[:100]}.")
        handler = handlers.get((kind, bool(name), request.method))
        if handler is None:
            raise Open311Error(405, f"{request.method} is not allowed here.")
        return await handler(request, name, fmt)

    def _chinese(self, request: Request) -> bool:
        return request.headers.get("accept-language", "").lower().startswith("zh")

    async def _snapshot(self) -> Snapshot:
        return await self.services.routing.current()

    async def _services(self, request: Request, _: str, fmt: Format) -> tuple[int, bytes]:
        records = georeport.services(await self._snapshot(), self._chinese(request))
        return 200, render_list(fmt, "services", "service", records)

    async def _definition(self, request: Request, code: str, fmt: Format) -> tuple[int, bytes]:
        return 200, render_object(
            fmt, "service_definition", georeport.definition(await self._snapshot(), code)
        )

    async def _requests(self, request: Request, _: str, fmt: Format) -> tuple[int, bytes]:
        snapshot = await self._snapshot()
        params = {key: request.query_params.getlist(key) for key in request.query_params}
        query = georeport.parse_query(snapshot, params, clock.now())
        records = await georeport.find_requests(snapshot, query, self._chinese(request))
        return 200, render_list(fmt, "service_requests", "request", records)

    async def _request(self, request: Request, reference: str, fmt: Format) -> tuple[int, bytes]:
        record = await georeport.find_request(await self._snapshot(), reference, self._chinese(request))
        return 200, render_list(fmt, "service_requests", "request", [record])

    async def _token(self, request: Request, token: str, fmt: Format) -> tuple[int, bytes]:
        return 200, render_list(fmt, "service_requests", "request", [await georeport.find_token(token)])

    async def _post(self, request: Request, _: str, fmt: Format) -> tuple[int, bytes]:
        try:
            form = [(k, v) for k, v in (await request.form()).multi_items() if isinstance(v, str)]
        except Exception as exc:  # python-multipart's parse errors have no common base
            raise Open311Error(400, "Send the request as application/x-www-form-urlencoded.") from exc
        keys = [v for k, v in form if k == "api_key"] or request.query_params.getlist("api_key")
        if len(keys) != 1:
            raise Open311Error(401, "api_key: give the service account's API key once.")
        try:
            account = await service_key_account(keys[0], self.key_budgets, OPEN311_WRITE)
        except DomainError as exc:
            raise georeport.as_open311(exc) from exc
        fields = [(k, v) for k, v in form if k != "api_key"]
        posted = await georeport.post_request(await self._snapshot(), account, fields)
        return (201 if posted.created else 200), render_list(
            fmt, "service_requests", "request", [posted.record]
        )


def open311_routes(services: Services, key_budgets: Budgets) -> list[BaseRoute]:
    endpoint = Open311(services, key_budgets)
    # Every method reaches the handler, so a wrong one gets the spec's error list (405), not plain text.
    methods = ["GET", "POST", "PUT", "PATCH", "DELETE"]
    return [Route(PREFIX + "/{path:path}", endpoint.handle, methods=methods)]
