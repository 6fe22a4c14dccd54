"""Optional OpenTelemetry tracing: on only when OTEL_EXPORTER_OTLP_ENDPOINT names a collector.

Each HTTP request gets a span (the ASGI middleware) and each GraphQL operation its spans (strawberry's
OpenTelemetryExtension: parsing, validation, resolvers), sent in batches over OTLP/HTTP. The packages
come with the `otel` extra (`pip install 'envcase[otel]'`) and are imported only when tracing is on,
so a deployment without a collector neither needs them nor pays for them.
"""

from __future__ import annotations

import logging
from typing import Any

from server.channels import ConfigurationError
from server.settings import Settings

log = logging.getLogger("server.tracing")

_provider: Any = None  # the process's one tracer provider, once tracing started


def enabled(settings: Settings) -> bool:
    return bool(settings.otel_exporter_otlp_endpoint)


def _start(settings: Settings) -> Any:
    global _provider
    if _provider is not None:
        return _provider
    try:
        from opentelemetry import trace
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError as exc:
        raise ConfigurationError(
            "OTEL_EXPORTER_OTLP_ENDPOINT is set but the tracing packages are missing: "
            "pip install 'envcase[otel]' (docs/deployment.md)."
        ) from exc
    assert settings.otel_exporter_otlp_endpoint
    endpoint = settings.otel_exporter_otlp_endpoint.rstrip("/") + "/v1/traces"
    provider = TracerProvider(resource=Resource.create({"service.name": settings.otel_service_name}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    trace.set_tracer_provider(provider)
    _provider = provider
    log.info("tracing: spans go to %s", endpoint)
    return provider


def schema_extensions(settings: Settings) -> list[Any]:
    """Strawberry's tracing extension when tracing is on."""
    if not enabled(settings):
        return []
    _start(settings)
    from strawberry.extensions.tracing import OpenTelemetryExtension

    return [OpenTelemetryExtension]


def middleware(settings: Settings) -> list[Any]:
    """The ASGI middleware (as Starlette `Middleware`) when tracing is on."""
    if not enabled(settings):
        return []
    _start(settings)
    from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
    from starlette.middleware import Middleware

    return [Middleware(OpenTelemetryMiddleware)]


def flush(timeout_millis: int = 5000) -> None:
    """Send the spans still batched (at shutdown, and for tests)."""
    if _provider is not None:
        _provider.force_flush(timeout_millis)
