"""Marking the inbox read and choosing how to be told."""

from __future__ import annotations

import strawberry

from notifications import service
from schema.context import Info
from schema.errors import UserError, payload_mutation
from schema.node import parse_global_id
from schema.notifications.inputs import NotificationPreferencesUpdateInput, NotificationsMarkReadInput
from schema.notifications.types import NotificationPreferences


@strawberry.type
class NotificationsMarkReadPayload:
    unread_count: int | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class NotificationPreferencesUpdatePayload:
    preferences: NotificationPreferences | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


def _given(value: object) -> bool:
    return value is not strawberry.UNSET and value is not None


@strawberry.type
class NotificationsMutation:
    @payload_mutation("Mark some of your notifications read (`ids`), or all of them (`all: true`).")
    async def notifications_mark_read(
        self, info: Info, input: NotificationsMarkReadInput
    ) -> NotificationsMarkReadPayload:
        user = info.context.require_user()
        ids = None
        if input.ids is not None:
            parsed = [parse_global_id(str(i)) for i in input.ids]
            # Another type's id, like another person's notification, is simply not found.
            ids = [p[1] if p is not None and p[0] == "Notification" else None for p in parsed]
        count = await service.mark_read(user, ids, bool(input.all))
        return NotificationsMarkReadPayload(unread_count=count)

    @payload_mutation("Choose your language, channels, quiet hours and the kinds of message you mute.")
    async def notification_preferences_update(
        self, info: Info, input: NotificationPreferencesUpdateInput
    ) -> NotificationPreferencesUpdatePayload:
        user = info.context.require_user()
        quiet_given = input.quiet_hours is not strawberry.UNSET
        quiet = input.quiet_hours if quiet_given else None
        change = service.PreferenceChange(
            language=input.language if _given(input.language) else None,
            push_enabled=input.push_enabled if _given(input.push_enabled) else None,
            sms_enabled=input.sms_enabled if _given(input.sms_enabled) else None,
            quiet_hours_given=quiet_given,
            quiet_from=quiet.from_ if quiet is not None else None,
            quiet_until=quiet.until if quiet is not None else None,
            muted_kinds=input.muted_kinds if _given(input.muted_kinds) else None,
        )
        preference = await service.update_preferences(user, change)
        return NotificationPreferencesUpdatePayload(
            preferences=NotificationPreferences.from_model(preference)
        )
