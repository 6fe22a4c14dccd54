"""The inbox entry and the caller's notification preferences."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import strawberry
from strawberry import relay

from identity.service import Principal
from notifications import access
from notifications.models import Language, Notification, NotificationPreference
from notifications.service import format_clock
from schema.context import Info
from schema.node import ModelNode
from schema.reports.types import CaseNode


@strawberry.type(name="Notification", description="One entry of the caller's in-app inbox.")
class NotificationNode(ModelNode[Notification]):
    model = Notification
    id: relay.NodeID[int]
    kind: str = strawberry.field(description="The message kind: case_accepted, case_escalated, ...")
    title: str
    body: str
    created_at: datetime
    read_at: datetime | None
    _row: strawberry.Private[Notification]

    @classmethod
    async def visible(cls, principal: Principal | None, rows: Sequence[Notification]) -> list[Notification]:
        return access.visible_notifications(principal, rows)

    @strawberry.field(description="The case it is about, when it is about one the caller may see.")
    async def case(self, info: Info) -> CaseNode | None:
        if self._row.subject != "case" or self._row.subject_id is None:
            return None
        (case,) = await CaseNode.resolve_nodes(info=info, node_ids=[str(self._row.subject_id)])
        return case


@strawberry.type(description="Quiet hours in the city's local time; may wrap midnight (22:00 to 07:00).")
class QuietHours:
    from_: str = strawberry.field(name="from", description="HH:MM")
    until: str = strawberry.field(description="HH:MM")


@strawberry.type(description="How the caller wants to be told. The in-app inbox always works.")
class NotificationPreferences:
    language: Language = strawberry.field(description="The language of messages (ZH_CN is zh-CN).")
    push_enabled: bool
    sms_enabled: bool
    quiet_hours: QuietHours | None = strawberry.field(description="No SMS then (one-time codes aside).")
    muted_kinds: list[str] = strawberry.field(description="Message kinds not wanted at all.")

    @classmethod
    def from_model(cls, row: NotificationPreference) -> NotificationPreferences:
        quiet = None
        if row.quiet_from_minute is not None and row.quiet_until_minute is not None:
            quiet = QuietHours(
                from_=format_clock(row.quiet_from_minute), until=format_clock(row.quiet_until_minute)
            )
        return cls(
            language=Language(row.language),
            push_enabled=row.push_enabled,
            sms_enabled=row.sms_enabled,
            quiet_hours=quiet,
            muted_kinds=list(row.muted_kinds or []),
        )
