"""Inputs of the webhook admin mutations."""

from __future__ import annotations

import strawberry

from webhooks.endpoints import EndpointChanges


@strawberry.input
class WebhookEndpointCreateInput:
    url: str = strawberry.field(
        description="https:// (http only for WEBHOOK_ALLOWED_HOSTS); public hosts only."
    )
    description: str = ""
    event_types: list[str] = strawberry.field(
        default_factory=list, description="Event types to send (e.g. case.submitted); empty: every type."
    )
    department_code: str | None = strawberry.field(default=None, description="Only this department's cases.")
    category_code: str | None = strawberry.field(default=None, description="Only this category's cases.")

    def to_domain(self) -> EndpointChanges:
        return EndpointChanges(
            url=self.url,
            description=self.description,
            event_types=list(self.event_types),
            department_code=self.department_code,
            category_code=self.category_code,
        )


@strawberry.input
class WebhookEndpointUpdateInput:
    id: strawberry.ID
    url: str | None = None
    description: str | None = None
    event_types: list[str] | None = strawberry.field(default=None, description="Empty: every type.")
    department_code: str | None = strawberry.field(default=None, description='"" removes the filter.')
    category_code: str | None = strawberry.field(default=None, description='"" removes the filter.')
    enabled: bool | None = strawberry.field(
        default=None, description="true re-enables a disabled endpoint and clears its failure count."
    )

    def to_domain(self) -> EndpointChanges:
        return EndpointChanges(
            url=self.url,
            description=self.description,
            event_types=None if self.event_types is None else list(self.event_types),
            department_code=self.department_code,
            category_code=self.category_code,
            enabled=self.enabled,
        )


@strawberry.input
class WebhookEndpointRotateSecretInput:
    id: strawberry.ID
    overlap_hours: float | None = strawberry.field(
        default=None,
        description="How long the old secret keeps signing beside the new one (default 24, at most 168).",
    )


@strawberry.input
class WebhookEndpointDeleteInput:
    id: strawberry.ID


@strawberry.input
class WebhookDeliveryReplayInput:
    id: strawberry.ID
