"""What notifications hold of an account (identity.rights): export, erase on deletion, move on recovery.

- Export: the notification preferences (the defaults when never set) and the in-app inbox.
- Erase: the inbox, the preferences and every push subscription are deleted.
- Move: the inbox and the new device's push subscriptions go to the recovered account; the recovered
  account's preferences stay (the throwaway account's are dropped).
"""

from __future__ import annotations

from typing import Any

from identity.rights import AccountPart
from notifications.models import Notification, NotificationPreference, PushSubscription


def _minute(value: int | None) -> str | None:
    return None if value is None else f"{value // 60:02d}:{value % 60:02d}"


async def export(user_id: int) -> dict[str, Any]:
    preference = await NotificationPreference.get_or_none(user_id=user_id)
    if preference is None:
        preference = NotificationPreference()  # the defaults, unsaved
    inbox = await Notification.filter(user_id=user_id).order_by("id")
    subscriptions = await PushSubscription.filter(user_id=user_id).count()
    return {
        "preferences": {
            "language": preference.language.value,
            "pushEnabled": preference.push_enabled,
            "smsEnabled": preference.sms_enabled,
            "quietFrom": _minute(preference.quiet_from_minute),
            "quietUntil": _minute(preference.quiet_until_minute),
            "mutedKinds": list(preference.muted_kinds),
        },
        "pushSubscriptions": subscriptions,
        "inbox": [
            {
                "kind": n.kind,
                "title": n.title,
                "body": n.body,
                "createdAt": n.created_at.isoformat(),
                "readAt": n.read_at.isoformat() if n.read_at else None,
            }
            for n in inbox
        ],
    }


async def erase(user_id: int) -> None:
    await Notification.filter(user_id=user_id).delete()
    await PushSubscription.filter(user_id=user_id).delete()
    await NotificationPreference.filter(user_id=user_id).delete()


async def move(from_user_id: int, to_user_id: int) -> None:
    await Notification.filter(user_id=from_user_id).update(user_id=to_user_id)
    await PushSubscription.filter(user_id=from_user_id).update(user_id=to_user_id)
    await NotificationPreference.filter(user_id=from_user_id).delete()


PART = AccountPart(export=export, erase=erase, move=move)
