"""The notification planner: an outbox row becomes inbox entries and push/SMS deliveries.

Called by the delivery worker inside its planning transaction (`delivery.planning.Planner`). The
inbox always gets the message (unless the person muted its kind); push goes to each of the person's
subscriptions when they allow push; SMS only for the kinds the templates mark `sms`, when they allow
SMS and have a phone, and never in their quiet hours: it is deferred to the end of them (city time).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from delivery.models import Delivery
from delivery.service import new_delivery
from identity.models import User
from kernel import city, clock
from kernel.outbox import OutboxEvent
from notifications.audience import Audience, audience_of
from notifications.models import Language, Notification, NotificationPreference, PushSubscription
from notifications.templates import DEFAULT_PATH, Templates, load_templates

PUSH = "push"
SMS = "sms"


def city_zone() -> ZoneInfo:
    """The city's time zone (kernel.city)."""
    return city.current().tz


def quiet_until(
    at: datetime, quiet_from: int | None, quiet_until_minute: int | None, zone: ZoneInfo
) -> datetime | None:
    """The end of the quiet hours `at` falls in (city time), or None when it falls outside them."""
    if quiet_from is None or quiet_until_minute is None or quiet_from == quiet_until_minute:
        return None
    local = at.astimezone(zone)
    minute = local.hour * 60 + local.minute
    if quiet_from < quiet_until_minute:
        inside = quiet_from <= minute < quiet_until_minute
    else:  # wraps midnight: 22:00-07:00
        inside = minute >= quiet_from or minute < quiet_until_minute
    if not inside:
        return None
    end_day = local.date() if minute < quiet_until_minute else local.date() + timedelta(days=1)
    end = datetime.combine(end_day, time(quiet_until_minute // 60, quiet_until_minute % 60), zone)
    return end.astimezone(at.tzinfo)


def _defaults(user_id: int) -> NotificationPreference:
    return NotificationPreference(user_id=user_id, updated_at=clock.now())


def _url(event: OutboxEvent, params: dict[str, Any]) -> str:
    if event.subject == "case":
        return f"/cases/{params['reference']}"
    return "/patrols"


def notification_planner(
    templates_path: Path | None = None,
) -> Callable[[OutboxEvent], Coroutine[Any, Any, list[Delivery]]]:
    """A planner rendering with the templates at `templates_path` (the city's own; None: the shipped
    ones). The file is loaded and checked now, so a broken one stops the worker at start."""
    templates = load_templates(templates_path or DEFAULT_PATH)

    async def plan(event: OutboxEvent) -> list[Delivery]:
        return await plan_with(templates, event)

    return plan


async def plan_notifications(event: OutboxEvent) -> list[Delivery]:
    """The planner with the templates shipped in notifications/data/templates.json."""
    return await plan_with(load_templates(), event)


async def plan_with(templates: Templates, event: OutboxEvent) -> list[Delivery]:
    audience = await audience_of(event)
    recipients = {u: k for u, k in audience.kinds.items() if k in templates.kinds}
    if not recipients:
        return []
    users = {
        u.id: u
        for u in await User.filter(id__in=list(recipients), is_active=True).only("id", "phone", "is_active")
    }
    preferences = {p.user_id: p for p in await NotificationPreference.filter(user_id__in=list(users))}  # type: ignore[attr-defined]
    now = clock.now()
    inbox: list[Notification] = []
    planned: list[tuple[int, str, Language, dict[str, Any], NotificationPreference]] = []
    for user_id in sorted(users):
        kind = recipients[user_id]
        preference = preferences.get(user_id) or _defaults(user_id)
        if kind in (preference.muted_kinds or []):
            continue
        language = Language(preference.language)
        params = _params(templates, audience, language)
        text = templates.render(kind, language, params)
        inbox.append(
            Notification(
                user_id=user_id,
                kind=kind,
                subject=event.subject,
                subject_id=event.subject_id,
                event_id=event.id,
                title=text.title,
                body=text.body,
                data={"params": params},
                created_at=now,
            )
        )
        planned.append((user_id, kind, language, params, preference))
    if not inbox:
        return []
    await Notification.bulk_create(inbox)
    push_to = [p[0] for p in planned if p[4].push_enabled]
    subscriptions: dict[int, list[int]] = {}
    if push_to:
        for sub_id, user_id in (
            await PushSubscription.filter(user_id__in=push_to).order_by("id").values_list("id", "user_id")
        ):
            subscriptions.setdefault(user_id, []).append(sub_id)
    inbox_ids: dict[int, int] = {}
    if subscriptions:  # only a push names its inbox entry (bulk_create gives rows no ids)
        inbox_ids = dict(
            await Notification.filter(event_id=event.id, user_id__in=list(subscriptions)).values_list(
                "user_id", "id"
            )
        )
    zone = city_zone()
    ordering = f"{event.subject}:{event.subject_id}"
    deliveries: list[Delivery] = []
    for (user_id, kind, language, params, preference), entry in zip(planned, inbox, strict=True):
        for sub_id in subscriptions.get(user_id, []):
            payload = {
                "title": entry.title,
                "body": entry.body,
                "url": _url(event, params),
                "notification": inbox_ids.get(user_id),
            }
            deliveries.append(new_delivery(PUSH, sub_id, payload, event_id=event.id, ordering_key=ordering))
        if kind in templates.sms_kinds and preference.sms_enabled and users[user_id].phone:
            sms = new_delivery(
                SMS,
                user_id,
                {"template": kind, "params": params, "language": language.value},
                event_id=event.id,
                ordering_key=ordering,
            )
            deferred = quiet_until(now, preference.quiet_from_minute, preference.quiet_until_minute, zone)
            if deferred is not None:
                sms.next_attempt_at = deferred
            deliveries.append(sms)
    return deliveries


def _params(templates: Templates, audience: Audience, language: Language) -> dict[str, Any]:
    params = dict(audience.params)
    if audience.category is not None:
        category = audience.category
        params["category"] = category.name_zh if language is Language.ZH_CN else category.name_en
    if audience.status_key is not None:
        params["status"] = templates.status_text(audience.status_key, language)
    return params
