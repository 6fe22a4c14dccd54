"""The application factory: Starlette routes, middleware, GraphQL view and database lifespan."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any, cast
from zoneinfo import ZoneInfo

import anyio
from cross_web import AsyncHTTPRequestAdapter, HTTPException
from graphql import GraphQLError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.file_uploads.utils import replace_placeholders_with_files
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.http.base import BaseRequestProtocol
from strawberry.http.types import QueryParams
from strawberry.schema.exceptions import InvalidOperationTypeError
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import BaseGraphQLTransportWSHandler
from strawberry.subscriptions.protocols.graphql_transport_ws.types import (
    ConnectionInitMessage,
    SubscribeMessage,
)
from strawberry.types import ExecutionResult
from tortoise.connection import get_connection
from tortoise.contrib.starlette import RegisterTortoise
from tortoise.exceptions import BaseORMException

from exports.jobs import ExportRunner
from identity import audit, rights
from identity.config import IdentityConfig
from identity.service import authenticate
from kernel import clock
from kernel.database import connection_loss_reported
from kernel.errors import DomainError, ErrorCode
from kernel.events import EventBus, LocalEventBus
from kernel.outbox import OutboxRelay
from kernel.retention import load_policy
from media import access as media_access
from media import account as media_account
from media.config import MediaConfig
from media.intake import PhotoIntake
from media.service import sweep_expired
from media.storage import Storage, StorageUnavailable
from notifications import account as notifications_account
from notifications.shortfall import sweep_patrol_shortfall
from patrols import access as patrols_access
from reports import access as reports_access
from reports import account as reports_account
from reports.deadlines import sweep_deadlines
from schema import build_schema
from schema.context import Context, Services
from server import tracing
from server.auth import bearer_authentication, key_principal_of, principal_of
from server.channels import otp_sender, refuse_unsafe_production
from server.city import install_city, refresh_city
from server.db import tortoise_config
from server.deliveries import close_channels, delivery_worker
from server.errors import (
    BAD_REQUEST,
    BadRequest,
    bad_request_handler,
    domain_error_handler,
    http_error_handler,
)
from server.exports_http import export_config, export_routes
from server.media_http import media_routes
from server.metrics import OperationMetrics
from server.middleware import ConnectionLoss, RateLimit, RequestLog
from server.negotiation import GRAPHQL_RESPONSE_JSON, is_request_error, prefers_graphql_response
from server.open311_http import open311_routes
from server.operations import Drain, Operations, Readiness
from server.patrols_http import patrol_routes
from server.persisted import Refused, cache_control, carry_document_id, document_to_run, requested_hash
from server.ratelimit import Budgets
from server.redis_bus import RedisEventBus
from server.retention import run_retention
from server.settings import Settings
from server.storage import check_media_storage, media_storage

log = logging.getLogger("server")


def photo_intake(settings: Settings) -> PhotoIntake:
    config = MediaConfig(
        max_bytes=settings.photo_max_bytes,
        max_pixels=settings.photo_max_pixels,
        upload_ttl=timedelta(seconds=settings.upload_expiry_seconds),
        chunk_lease=timedelta(seconds=settings.upload_chunk_lease_seconds),
        unattached_ttl=timedelta(seconds=settings.photo_unattached_expiry_seconds),
        camera_timezone=ZoneInfo(settings.photo_camera_timezone),
    )
    # Temporary uploads sit beside a local store, so keeping an original is a rename; with S3 they are
    # staged here and streamed to the bucket when finished.
    return PhotoIntake(media_storage(settings), settings.media_root / "uploads", config)


async def run_every(seconds: int, name: str, job: Callable[[], Awaitable[object]]) -> None:
    """An opt-in periodic job (media expiry, deadlines); each is safe to run in every process."""
    while True:
        await asyncio.sleep(seconds)
        try:
            result = await job()
        except Exception:  # a failed run must not end the loop; the next one retries
            log.exception("%s failed", name)
            continue
        log.info("%s: %s", name, result)


def identity_config(settings: Settings) -> IdentityConfig:
    return IdentityConfig(
        secret_key=settings.secret_key,
        access_token_seconds=settings.access_token_seconds,
        refresh_token_seconds=settings.refresh_token_seconds,
        otp_seconds=settings.otp_seconds,
        otp_max_attempts=settings.otp_max_attempts,
        otp_per_phone_per_hour=settings.otp_per_phone_per_hour,
        otp_per_address_per_hour=settings.otp_per_address_per_hour,
        refresh_grace_seconds=settings.refresh_grace_seconds,
        session_recheck_seconds=settings.session_recheck_seconds,
        sign_in_failures=settings.limits.sign_in_failures,
        sign_in_failures_per_address=settings.limits.sign_in_failures_per_address,
        sign_in_window_seconds=settings.limits.sign_in_window_seconds,
        otp_sender=otp_sender(settings),
    )


def _no_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


# "Try Again Later" (RFC 6455's registry): a close a graphql-ws client retries, unlike its 44xx codes.
WS_TRY_AGAIN_LATER = 1013


class TransportWSHandler(BaseGraphQLTransportWSHandler[Context, None]):
    """graphql-transport-ws whose `connection_init` closes the socket with 1013 and the reason
    `UNAVAILABLE` when the token check loses its database connection, instead of the exception
    escaping the socket (the client would see an abnormal close, or nothing)."""

    async def handle_connection_init(self, message: ConnectionInitMessage) -> None:
        try:
            await super().handle_connection_init(message)
        except DomainError as exc:  # only a lost connection gets here (`AppGraphQL.on_ws_connect`)
            await self.websocket.close(code=WS_TRY_AGAIN_LATER, reason=exc.code.value)

    async def handle_subscribe(self, message: SubscribeMessage) -> None:
        """Trusted documents on the socket as over HTTP (`documentId`, Apollo's hash, and
        TRUSTED_DOCUMENTS_ONLY); a refusal is the operation's `error` message."""
        payload = message.get("payload")
        if not self.connection_acknowledged or not isinstance(payload, dict):
            return await super().handle_subscribe(message)  # strawberry's own refusals
        trusted_only = cast("AppGraphQL", self.view).trusted_only
        try:
            data = carry_document_id(dict(payload))
            query = data.get("query")
            sent = query if isinstance(query, str) else None
            document = await document_to_run(
                sent, requested_hash(data.get("extensions")), trusted_only=trusted_only
            )
        except Refused as refusal:
            error = refusal.error
        except BadRequest as exc:
            error = GraphQLError(exc.message, extensions={"code": BAD_REQUEST})
        else:
            if document is not None:
                data["query"] = document
            return await super().handle_subscribe(cast(SubscribeMessage, {**message, "payload": data}))
        await self.send_message({"id": message["id"], "type": "error", "payload": [error.formatted]})
        return None


_CONNECTION_LOST = (ErrorCode.UNAVAILABLE, ErrorCode.OUTCOME_UNKNOWN)
_ALLOW_POST: Mapping[str, str] = {"Allow": "POST"}


class AppGraphQL(GraphQL[Context, None]):
    """Strawberry's view, with a strict body parser: a body it cannot use is a JSON 400 BAD_REQUEST
    (through the app's `BadRequest` handler), never a crash in strawberry or a plain-text answer."""

    graphql_transport_ws_handler_class = TransportWSHandler

    def __init__(self, settings: Settings, identity: IdentityConfig, services: Services) -> None:
        limits = settings.limits
        super().__init__(
            build_schema(
                production=not settings.debug,
                max_depth=limits.max_query_depth,
                max_tokens=limits.max_query_tokens,
                max_aliases=limits.max_aliases,
                extra_extensions=(OperationMetrics, *tracing.schema_extensions(settings)),
            ),
            graphql_ide="graphiql" if settings.debug else None,
            # Registered queries only: `execute_single` refuses a GET that sends its document.
            allow_queries_via_get=True,
            multipart_uploads_enabled=True,
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
            allowed_origins=settings.allowed_origins,
        )
        self.identity = identity
        self.services = services
        self.trusted_only = settings.trusted_documents_only
        self.max_age = settings.trusted_documents_max_age_seconds

    def parse_json(self, data: str | bytes) -> dict[str, Any]:
        """Every JSON strawberry reads here (the body, multipart `operations` and `map`) is an object."""
        try:
            # Invalid UTF-8 is a ValueError; NaN and Infinity are not JSON; a deep nest exhausts the stack.
            parsed = json.loads(data, parse_constant=_no_constant)
        except (ValueError, RecursionError) as exc:
            raise BadRequest("The request body is not valid JSON.") from exc
        if not isinstance(parsed, dict):
            raise BadRequest('Send a JSON object: {"query": ..., "variables": {...}}.')
        return carry_document_id(parsed)

    def parse_query_params(self, params: QueryParams) -> dict[str, Any]:
        return carry_document_id(super().parse_query_params(params))

    def should_render_graphql_ide(self, request: BaseRequestProtocol) -> bool:
        # A browser's GET of a registered query (Accept: */*) wants its answer, not GraphiQL.
        named = any(key in request.query_params for key in ("documentId", "extensions"))
        return not named and super().should_render_graphql_ide(request)

    async def parse_multipart(self, request: AsyncHTTPRequestAdapter) -> dict[str, Any]:
        """The multipart upload request (`operations`, `map`, files), checked before it is used."""
        try:
            form = await request.get_form_data()
        except ValueError as exc:
            raise BadRequest("The multipart body cannot be read.") from exc
        operations, files_map = form.form.get("operations"), form.form.get("map", "{}")
        if not isinstance(operations, str | bytes) or not isinstance(files_map, str | bytes):
            raise BadRequest("Send `operations` and `map` as JSON form fields.")
        paths_by_file = self.parse_json(files_map)
        if not all(
            isinstance(paths, list) and all(isinstance(path, str) for path in paths)
            for paths in paths_by_file.values()
        ):
            raise BadRequest("`map` must be an object of file field names to lists of variable paths.")
        try:
            return replace_placeholders_with_files(self.parse_json(operations), paths_by_file, form.files)
        except (KeyError, IndexError, TypeError, ValueError, RecursionError) as exc:
            raise BadRequest("A `map` entry names a missing file or a path not in `operations`.") from exc

    async def parse_http_body(
        self, request: AsyncHTTPRequestAdapter
    ) -> GraphQLRequestData | list[GraphQLRequestData]:
        try:
            return await super().parse_http_body(request)
        except HTTPException as exc:  # strawberry's own refusals (content type, field types) as JSON
            raise BadRequest(exc.reason) from exc

    async def execute_single(
        self,
        request: Request,
        request_adapter: AsyncHTTPRequestAdapter,
        sub_response: Response,
        context: Context,
        root_value: None,
        request_data: GraphQLRequestData,
    ) -> ExecutionResult:
        """Trusted documents: GET runs registered queries only, with cache headers for what anyone may see.
        The media type the client prefers, and with application/graphql-response+json a request that
        did not run (it does not parse or validate, a variable does not fit, an unknown id) is a 400."""
        if prefers_graphql_response(request_adapter.headers.get("accept")):
            sub_response.media_type = GRAPHQL_RESPONSE_JSON  # read by `create_response`
        result = await self._execute_by_method(request, request_adapter, sub_response, context, request_data)
        if sub_response.media_type == GRAPHQL_RESPONSE_JSON and is_request_error(result):
            sub_response.status_code = 400
        return result

    async def _execute_by_method(
        self,
        request: Request,
        request_adapter: AsyncHTTPRequestAdapter,
        sub_response: Response,
        context: Context,
        request_data: GraphQLRequestData,
    ) -> ExecutionResult:
        if request_adapter.method != "GET":
            return await self._execute_trusted(request, request_adapter, sub_response, context, request_data)
        if requested_hash(request_data.extensions) is None:
            raise StarletteHTTPException(405, "GET runs registered queries only (documentId).", _ALLOW_POST)
        try:
            result = await self._execute_trusted(
                request, request_adapter, sub_response, context, request_data
            )
        except HTTPException as exc:
            if isinstance(exc.__cause__, InvalidOperationTypeError):  # a mutation (GraphQL-over-HTTP: 405)
                raise StarletteHTTPException(405, exc.reason, _ALLOW_POST) from exc
            raise
        sub_response.headers["Cache-Control"] = cache_control(context.principal, result, self.max_age)
        sub_response.headers["Vary"] = "Authorization, Accept"
        return result

    async def _execute_trusted(
        self,
        request: Request,
        request_adapter: AsyncHTTPRequestAdapter,
        sub_response: Response,
        context: Context,
        request_data: GraphQLRequestData,
    ) -> ExecutionResult:
        """The request's document (persisted.document_to_run) run by strawberry."""
        sha256 = requested_hash(request_data.extensions)
        try:
            query = await document_to_run(request_data.query, sha256, trusted_only=self.trusted_only)
        except Refused as refusal:
            return refusal.result()
        request_data = dataclasses.replace(request_data, query=query)
        return await super().execute_single(
            request, request_adapter, sub_response, context, None, request_data
        )

    async def process_result(self, request: Request, result: ExecutionResult) -> GraphQLHTTPResponse:
        processed = await super().process_result(request, result)
        if is_request_error(result) and prefers_graphql_response(request.headers.get("accept")):
            processed.pop("data", None)  # the spec's request error: it never began to execute
        return processed

    def create_response(
        self, response_data: GraphQLHTTPResponse | list[GraphQLHTTPResponse], sub_response: Response
    ) -> Response:
        response = super().create_response(response_data, sub_response)
        if sub_response.media_type == GRAPHQL_RESPONSE_JSON:
            response.headers["content-type"] = f"{GRAPHQL_RESPONSE_JSON}; charset=utf-8"
        return response

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket | None = None
    ) -> Context:
        return Context(
            request=request,
            response=response,
            principal=principal_of(request),
            identity=self.identity,
            key=key_principal_of(request),
            services=self.services,
        )

    async def on_ws_connect(self, context: Context) -> Any:
        """WebSockets authenticate in `connection_init`: `{"authToken": "<access token>"}` (optional)."""
        token = (context.connection_params or {}).get("authToken")
        if token:
            try:
                async with connection_loss_reported():
                    context.principal = await authenticate(str(token), self.identity)
            except DomainError as exc:
                if exc.code in _CONNECTION_LOST:
                    raise  # closed as UNAVAILABLE by `TransportWSHandler`
                raise ConnectionRejectionError({"code": "UNAUTHENTICATED"}) from exc
        return await super().on_ws_connect(context)


async def healthz(events: EventBus, storage: Storage, request: Request) -> JSONResponse:
    try:
        await get_connection("default").execute_query("SELECT 1")
    except Exception:  # any failure to reach the database means "not ready"
        log.exception("health check: database unreachable")
        return JSONResponse({"status": "unavailable", "database": "unreachable"}, status_code=503)
    media = {"storage": storage.name, "status": "ok"}
    try:
        await storage.check()
    except StorageUnavailable as exc:
        log.error("health check: media storage unavailable: %s", exc)
        media["status"] = "unreachable"
        return JSONResponse({"status": "unavailable", "database": "ok", "media": media}, status_code=503)
    return JSONResponse(
        {"status": "ok", "database": "ok", "media": media, "liveSubscriptions": events.listening}
    )


async def _run_then_set(run: Callable[[], Awaitable[None]], done: anyio.Event) -> None:
    try:
        await run()
    finally:
        done.set()


def register_photo_holders() -> None:
    """Photos follow what holds them: media.access asks the domains that hold photo ids."""
    media_access.register_holder("reports", reports_access.photo_standings)
    media_access.register_holder("patrols", patrols_access.photo_standings)


def register_account_parts() -> None:
    """Residents' rights: what each domain exports, erases and moves of an account (identity.rights)."""
    rights.register_part("reports", reports_account.PART)
    rights.register_part("photos", media_account.PART)
    rights.register_part("notifications", notifications_account.PART)


def create_app(settings: Settings, *, init_db: bool = True) -> Starlette:
    """`init_db=False` leaves the ORM to the caller (tests own one database context per test)."""
    register_photo_holders()
    register_account_parts()
    install_city(settings)  # built once, here: a malformed calendar stops the app before it serves
    identity = identity_config(settings)
    events = RedisEventBus(settings.redis_url) if settings.redis_url else LocalEventBus()
    intake = photo_intake(settings)
    services = Services(settings=settings, events=events, media=intake)
    graphql = AppGraphQL(settings, identity, services)
    # Request budgets (a client address's, a service account's: server.auth, Open311), in Redis if set.
    budgets = Budgets(settings.redis_url)
    drain = Drain()
    readiness = Readiness(intake.storage, [budgets.ping] if settings.redis_url else [], drain)
    # Built here, so settings it refuses stop the app before it serves.
    deliveries = delivery_worker(settings) if settings.delivery_worker_in_process else None
    # Exports run where deliveries do: here on the single-machine default, else in `python -m server worker`.
    exporter = ExportRunner(export_config(settings)) if settings.delivery_worker_in_process else None
    # Loaded (and validated) here, so a malformed retention file stops the app before it serves.
    retention_policy = load_policy(settings.retention_policy_path)
    access_writer = audit.GroupWriter(settings.access_log_write_delay_ms / 1000)

    @asynccontextmanager
    async def background(app: Starlette) -> AsyncIterator[None]:
        assert services.media is not None
        try:
            await refresh_city()  # the calendar years admins stored
        except (OSError, BaseORMException):
            # The database is down or not migrated yet: serve (`/readyz` says why) with the shipped
            # calendar until the periodic refresh reads the stored years.
            log.warning("stored calendar years not read; the shipped calendar serves", exc_info=True)
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(OutboxRelay(services.events).run)
            if settings.city_calendar_refresh_seconds > 0:
                every = settings.city_calendar_refresh_seconds
                tasks.start_soon(run_every, every, "city calendar refresh", refresh_city)
            deliveries_done = anyio.Event()
            if deliveries is not None:  # else `python -m server worker` runs it
                log.info("delivery worker in this process (channels: %s)", ", ".join(deliveries.channels))
                tasks.start_soon(_run_then_set, deliveries.run, deliveries_done)
            if exporter is not None:
                tasks.start_soon(exporter.run)
            if settings.media_sweep_seconds > 0:
                media_sweep = functools.partial(sweep_expired, services.media)
                tasks.start_soon(run_every, settings.media_sweep_seconds, "media sweep", media_sweep)
            if settings.deadline_sweep_seconds > 0:
                quiet = timedelta(days=settings.feedback_quiet_days)
                deadline_sweep = lambda: sweep_deadlines(clock.now(), quiet)  # noqa: E731
                tasks.start_soon(run_every, settings.deadline_sweep_seconds, "deadline sweep", deadline_sweep)
            if settings.retention_sweep_seconds > 0:
                storage = services.media.storage
                retention = lambda: run_retention(retention_policy, storage)  # noqa: E731
                tasks.start_soon(run_every, settings.retention_sweep_seconds, "retention", retention)
            if settings.patrol_shortfall_sweep_seconds > 0:
                days_before = settings.patrol_shortfall_days_before
                shortfall = lambda: sweep_patrol_shortfall(clock.now(), days_before)  # noqa: E731
                every = settings.patrol_shortfall_sweep_seconds
                tasks.start_soon(run_every, every, "patrol shortfall sweep", shortfall)
            yield
            drain.start("shutdown")
            await access_writer.close()  # requests are done: write the access records still held back
            if deliveries is not None:  # the batch in flight is sent and recorded, then the loop ends
                deliveries.stop()
                with anyio.move_on_after(settings.delivery_lease_seconds):
                    await deliveries_done.wait()
                if not deliveries_done.is_set():
                    log.warning("delivery worker did not finish its batch in time; its lease returns it")
            tasks.cancel_scope.cancel()
        if deliveries is not None:
            await close_channels(deliveries)
        intake.close()
        await intake.storage.close()
        await services.events.close()
        await budgets.close()
        tracing.flush()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        refuse_unsafe_production(settings)  # before anything starts: a clear refusal, not a half server
        await check_media_storage(settings, intake.storage)
        restore_signals = drain.on_signals()  # SIGTERM: readiness turns 503 while uvicorn drains
        try:
            if not init_db:
                async with background(app):
                    yield
                return
            async with RegisterTortoise(app, config=tortoise_config(settings.database_url)), background(app):
                yield
            log.info("database connections closed")
        finally:
            restore_signals()

    middleware = [
        *tracing.middleware(settings),
        Middleware(RequestLog, access_writer=access_writer),
        Middleware(Operations, readiness=readiness, metrics_token=settings.metrics_token),
        Middleware(
            CORSMiddleware,
            allow_origins=list(settings.allowed_origins),
            allow_methods=["GET", "POST", "PATCH", "HEAD", "DELETE", "OPTIONS"],
            allow_headers=[
                "authorization",
                "content-type",
                "x-request-id",
                "upload-offset",
                "upload-length",
                "upload-metadata",
                "upload-checksum",
                "tus-resumable",
            ],
            # What a browser's tus client reads (tus-js-client needs them exposed).
            expose_headers=[
                "x-request-id",
                "location",
                "retry-after",
                "upload-offset",
                "upload-length",
                "upload-expires",
                "tus-resumable",
                "tus-version",
                "tus-extension",
                "tus-max-size",
                "tus-checksum-algorithm",
            ],
        ),
        Middleware(RateLimit, per_minute=settings.limits.requests_per_minute, budgets=budgets),
        Middleware(ConnectionLoss),  # inside CORS, so a browser can read the 503
        bearer_authentication(identity, budgets),
    ]
    routes = [
        Route("/graphql", graphql, methods=["GET", "POST"]),
        WebSocketRoute("/graphql", graphql),
        Route("/healthz", functools.partial(healthz, services.events, intake.storage), methods=["GET"]),
        *media_routes(services),
        *patrol_routes(services),
        *export_routes(settings),
        *open311_routes(services, budgets),
    ]
    app = Starlette(
        routes=routes,
        middleware=middleware,
        exception_handlers={
            DomainError: domain_error_handler,
            BadRequest: bad_request_handler,
            StarletteHTTPException: http_error_handler,
        },
        lifespan=lifespan,
        max_body_size=settings.limits.max_body_bytes,
    )
    # For whoever serves the app without its lifespan (tests, benchmarks): close it when done.
    app.state.access_writer = access_writer
    app.state.drain = drain
    app.state.budgets = budgets
    return app
