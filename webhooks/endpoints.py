"""Registering, changing and removing webhook endpoints, their secrets, and their delivery log.

Callers check that the caller is an admin (`webhooks.access`); these functions validate the input and
raise `DomainError`s that name the input field at fault.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from tortoise.expressions import Q

from delivery.models import Delivery, DeliveryAttempt, DeliveryStatus
from delivery.service import REPLAYABLE, replay
from identity.models import User
from kernel import clock, outbox
from kernel.database import atomic
from kernel.errors import DomainError, DomainErrors, conflict, invalid, not_found
from reports.models import Category, Department
from webhooks import signing
from webhooks.addresses import AddressRefused, AllowList, check_url
from webhooks.events import KNOWN_EVENT_TYPES, WEBHOOK_DISABLED
from webhooks.models import WebhookEndpoint, WebhookSecret

CHANNEL = "webhook"  # Delivery.channel of webhook calls
INPUT = ("input",)
MAX_DESCRIPTION = 255
MAX_OVERLAP_HOURS = 7 * 24
DEFAULT_OVERLAP_HOURS = 24.0


@dataclass
class EndpointChanges:
    """What an admin sets; None leaves a field as it is (on create: the default)."""

    url: str | None = None
    description: str | None = None
    event_types: list[str] | None = None
    department_code: str | None = None  # "" clears the filter
    category_code: str | None = None  # "" clears the filter
    enabled: bool | None = None


async def _validated(changes: EndpointChanges, allow: AllowList) -> dict[str, Any]:
    """The column values of `changes`, or every problem at once."""
    errors: list[DomainError] = []
    values: dict[str, Any] = {}
    if changes.url is not None:
        url = changes.url.strip()
        try:
            await check_url(url, allow)
            values["url"] = url
        except AddressRefused as exc:
            errors.append(invalid(str(exc), *INPUT, "url"))
    if changes.description is not None:
        if len(changes.description) > MAX_DESCRIPTION:
            errors.append(invalid(f"At most {MAX_DESCRIPTION} characters.", *INPUT, "description"))
        values["description"] = changes.description.strip()
    if changes.event_types is not None:
        unknown = sorted(set(changes.event_types) - KNOWN_EVENT_TYPES)
        if unknown:
            errors.append(
                invalid(
                    f"Unknown event types: {', '.join(unknown[:5])} (see docs/webhooks.md).",
                    *INPUT,
                    "eventTypes",
                )
            )
        values["event_types"] = sorted(set(changes.event_types))
    if changes.department_code is not None:
        if changes.department_code == "":
            values["department_id"] = None
        else:
            department = await Department.get_or_none(code=changes.department_code)
            if department is None:
                errors.append(invalid("No such department.", *INPUT, "departmentCode"))
            else:
                values["department_id"] = department.id
    if changes.category_code is not None:
        if changes.category_code == "":
            values["category_id"] = None
        else:
            category = await Category.get_or_none(code=changes.category_code)
            if category is None:
                errors.append(invalid("No such category.", *INPUT, "categoryCode"))
            else:
                values["category_id"] = category.id
    if errors:
        raise DomainErrors(errors)
    return values


async def create_endpoint(
    user: User, changes: EndpointChanges, allow: AllowList
) -> tuple[WebhookEndpoint, str]:
    """A new endpoint and its signing secret (returned only here: show it once)."""
    if changes.url is None:
        raise invalid("A URL is required.", *INPUT, "url")
    values = await _validated(changes, allow)
    now = clock.now()
    secret = signing.new_secret()
    async with atomic():
        endpoint = await WebhookEndpoint.create(
            **values, created_by_id=user.id, created_at=now, updated_at=now
        )
        await WebhookSecret.create(endpoint_id=endpoint.id, secret=secret, created_at=now)
    return endpoint, secret


async def get_endpoint(endpoint_id: int, *field: str) -> WebhookEndpoint:
    endpoint = await WebhookEndpoint.get_or_none(id=endpoint_id)
    if endpoint is None:
        raise not_found("webhook endpoint", *field)
    return endpoint


async def update_endpoint(endpoint_id: int, changes: EndpointChanges, allow: AllowList) -> WebhookEndpoint:
    """Change an endpoint. Enabling it again clears its failure count and reason; disabling it by hand
    cancels its pending deliveries, as an automatic disabling does."""
    endpoint = await get_endpoint(endpoint_id, *INPUT, "id")
    values = await _validated(changes, allow)
    async with atomic():
        if changes.enabled is True and not endpoint.enabled:
            values.update(enabled=True, disabled_reason=None, consecutive_failures=0)
        elif changes.enabled is False and endpoint.enabled:
            await disable(endpoint, "Disabled by an admin.", announce=False)
        if values:
            values["updated_at"] = clock.now()
            await WebhookEndpoint.filter(id=endpoint.id).update(**values)
    return await WebhookEndpoint.get(id=endpoint.id)


async def delete_endpoint(endpoint_id: int) -> None:
    """Remove an endpoint and its secrets; its pending deliveries are cancelled, its log is kept."""
    endpoint = await get_endpoint(endpoint_id, *INPUT, "id")
    async with atomic():
        await cancel_pending(endpoint.id)
        await endpoint.delete()


async def rotate_secret(endpoint_id: int, overlap_hours: float | None) -> tuple[WebhookEndpoint, str]:
    """A new current secret; the one it replaces keeps signing (beside it) for `overlap_hours`.
    Secrets that already left their overlap are removed."""
    hours = DEFAULT_OVERLAP_HOURS if overlap_hours is None else overlap_hours
    if not 0 <= hours <= MAX_OVERLAP_HOURS:
        raise invalid(f"overlapHours must be between 0 and {MAX_OVERLAP_HOURS}.", *INPUT, "overlapHours")
    endpoint = await get_endpoint(endpoint_id, *INPUT, "id")
    now = clock.now()
    secret = signing.new_secret()
    async with atomic():
        await WebhookSecret.filter(endpoint_id=endpoint.id, expires_at__lte=now).delete()
        await WebhookSecret.filter(endpoint_id=endpoint.id, expires_at=None).update(
            expires_at=now + timedelta(hours=hours)
        )
        await WebhookSecret.create(endpoint_id=endpoint.id, secret=secret, created_at=now)
        await WebhookEndpoint.filter(id=endpoint.id).update(updated_at=now)
    return await WebhookEndpoint.get(id=endpoint.id), secret


async def signing_secrets(endpoint_id: int, now: datetime) -> list[str]:
    """The secrets that sign a request now: the current one first, then those still in their overlap."""
    rows = await WebhookSecret.filter(
        Q(expires_at=None) | Q(expires_at__gt=now), endpoint_id=endpoint_id
    ).order_by("-created_at", "-id")
    return [row.secret for row in rows]


async def signing_secrets_of(endpoint_ids: Sequence[int], now: datetime) -> dict[int, list[str]]:
    """`signing_secrets` of several endpoints in one query (the worker's batches)."""
    rows = await WebhookSecret.filter(
        Q(expires_at=None) | Q(expires_at__gt=now), endpoint_id__in=list(endpoint_ids)
    ).order_by("endpoint_id", "-created_at", "-id")
    secrets: dict[int, list[str]] = {}
    for row in rows:
        secrets.setdefault(row.endpoint_id, []).append(row.secret)
    return secrets


async def previous_secret_expiry(endpoint_id: int, now: datetime) -> datetime | None:
    row = (
        await WebhookSecret.filter(endpoint_id=endpoint_id, expires_at__gt=now)
        .order_by("-expires_at")
        .first()
    )
    return row.expires_at if row else None


async def cancel_pending(endpoint_id: int, *, except_id: int | None = None) -> int:
    query = Delivery.filter(channel=CHANNEL, target_id=endpoint_id, status=DeliveryStatus.PENDING)
    if except_id is not None:
        query = query.exclude(id=except_id)
    return await query.update(status=DeliveryStatus.CANCELLED, finished_at=clock.now(), lease_until=None)


async def disable(
    endpoint: WebhookEndpoint, reason: str, *, announce: bool = True, except_id: int | None = None
) -> None:
    """Disable an endpoint (in the caller's transaction): its pending deliveries are cancelled (an admin
    may replay them), and, when `announce`, a `webhook_endpoint.disabled` event is written, which other
    endpoints may hear."""
    now = clock.now()
    updated = await WebhookEndpoint.filter(id=endpoint.id, enabled=True).update(
        enabled=False, disabled_reason=reason, updated_at=now
    )
    if not updated:  # someone else disabled it first
        return
    await cancel_pending(endpoint.id, except_id=except_id)
    if announce:
        await outbox.emit(
            outbox.change(
                WEBHOOK_DISABLED,
                "webhook_endpoint",
                endpoint.id,
                [],
                now,
                reason=reason,
                url=endpoint.url,
                failures=endpoint.consecutive_failures,
            )
        )


# --- the delivery log ------------------------------------------------------------------------------


def deliveries_of(endpoint_id: int) -> Any:
    """The endpoint's deliveries (a queryset, for paging newest first)."""
    return Delivery.filter(channel=CHANNEL, target_id=endpoint_id)


async def attempts_of(delivery_ids: list[int]) -> list[list[DeliveryAttempt]]:
    """The attempt logs of several deliveries in one query (a batch function), oldest attempt first."""
    found: dict[int, list[DeliveryAttempt]] = {i: [] for i in delivery_ids}
    if delivery_ids:
        for attempt in await DeliveryAttempt.filter(delivery_id__in=delivery_ids).order_by("at", "id"):
            found[attempt.delivery_id].append(attempt)  # type: ignore[attr-defined]  # the FK column
    return [found[i] for i in delivery_ids]


async def get_delivery(delivery_id: int, *field: str) -> Delivery:
    delivery = await Delivery.get_or_none(id=delivery_id, channel=CHANNEL)
    if delivery is None:
        raise not_found("webhook delivery", *field)
    return delivery


async def replay_delivery(delivery_id: int) -> Delivery:
    """Send a finished delivery again, a delivered one too (an integrator that lost it): the receiver
    gets the same `webhook-id` and may drop it as a duplicate. One whose endpoint is gone or disabled
    cannot be replayed until the endpoint is enabled again."""
    delivery = await get_delivery(delivery_id, *INPUT, "id")
    endpoint = await WebhookEndpoint.get_or_none(id=delivery.target_id)
    if endpoint is None or not endpoint.enabled:
        raise conflict("The endpoint is disabled or removed; enable it first.", *INPUT, "id")
    return await replay(delivery, (*REPLAYABLE, DeliveryStatus.DELIVERED))
