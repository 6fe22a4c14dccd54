"""Inputs of the notification mutations."""

from __future__ import annotations

import strawberry

from notifications.models import Language


@strawberry.input(description="Exactly one of `ids` (at most 100) or `all: true`.")
class NotificationsMarkReadInput:
    ids: list[strawberry.ID] | None = None
    all: bool | None = None


@strawberry.input(description="Quiet hours in the city's local time, HH:MM; may wrap midnight.")
class QuietHoursInput:
    from_: str = strawberry.field(name="from")
    until: str


@strawberry.input(description="Only the fields given change; `quietHours: null` turns quiet hours off.")
class NotificationPreferencesUpdateInput:
    language: Language | None = strawberry.UNSET
    push_enabled: bool | None = strawberry.UNSET
    sms_enabled: bool | None = strawberry.UNSET
    quiet_hours: QuietHoursInput | None = strawberry.UNSET
    muted_kinds: list[str] | None = strawberry.UNSET
