"""The inbox and preferences as the owner uses them: read, mark read, choose how to be told."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from identity.models import User
from kernel import clock
from kernel.database import atomic
from kernel.errors import DomainError, DomainErrors, invalid, not_found
from notifications.models import Language, Notification, NotificationPreference
from notifications.templates import load_templates

MAX_IDS = 100
INPUT = ("input",)
_CLOCK = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


async def unread_count(user_id: int) -> int:
    return await Notification.filter(user_id=user_id, read_at=None).count()


async def mark_read(user: User, ids: Sequence[int | None] | None, everything: bool) -> int:
    """Mark the caller's `ids` (or all of their inbox) read; returns the unread count after.

    An id that is not the caller's reads as missing (NOT_FOUND), whoever's it is."""
    if (ids is None) == (not everything):
        raise invalid("Give either `ids` or `all: true`.", *INPUT)
    now = clock.now()
    if everything:
        await Notification.filter(user_id=user.id, read_at=None).update(read_at=now)
        return await unread_count(user.id)
    assert ids is not None
    if not ids:
        raise invalid("Give at least one id.", *INPUT, "ids")
    if len(ids) > MAX_IDS:
        raise invalid(f"At most {MAX_IDS} ids at once.", *INPUT, "ids")
    wanted = {i for i in ids if i is not None}
    own = {i for (i,) in await Notification.filter(user_id=user.id, id__in=list(wanted)).values_list("id")}
    errors = [
        not_found("notification", *INPUT, "ids", str(n))
        for n, i in enumerate(ids)
        if i is None or i not in own
    ]
    if errors:
        raise DomainErrors(errors)
    await Notification.filter(user_id=user.id, id__in=list(own), read_at=None).update(read_at=now)
    return await unread_count(user.id)


async def preferences_of(user_id: int) -> NotificationPreference:
    found = await NotificationPreference.get_or_none(user_id=user_id)
    return found or NotificationPreference(user_id=user_id, updated_at=clock.now())


def parse_clock(value: str, *field: str) -> int:
    match = _CLOCK.match(value.strip())
    if match is None:
        raise invalid("Use 24-hour HH:MM, e.g. 22:00.", *field)
    return int(match.group(1)) * 60 + int(match.group(2))


def format_clock(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


@dataclass(frozen=True, slots=True)
class PreferenceChange:
    """What the caller asked to change; None leaves a choice as it is."""

    language: Language | None = None
    push_enabled: bool | None = None
    sms_enabled: bool | None = None
    quiet_hours_given: bool = False
    quiet_from: str | None = None  # both None with quiet_hours_given: no quiet hours
    quiet_until: str | None = None
    muted_kinds: Sequence[str] | None = None


async def update_preferences(user: User, change: PreferenceChange) -> NotificationPreference:
    errors: list[DomainError] = []
    quiet: tuple[int | None, int | None] | None = None
    if change.quiet_hours_given:
        if change.quiet_from is None or change.quiet_until is None:
            quiet = (None, None)
        else:
            try:
                start = parse_clock(change.quiet_from, *INPUT, "quietHours", "from")
                end = parse_clock(change.quiet_until, *INPUT, "quietHours", "until")
                if start == end:
                    errors.append(
                        invalid("Quiet hours must not start and end at once.", *INPUT, "quietHours")
                    )
                quiet = (start, end)
            except DomainError as exc:
                errors.append(exc)
    muted: list[str] | None = None
    if change.muted_kinds is not None:
        known = load_templates().kinds
        muted = sorted(set(change.muted_kinds))
        errors.extend(
            invalid(f"Unknown message kind {kind!r}.", *INPUT, "mutedKinds", str(n))
            for n, kind in enumerate(change.muted_kinds)
            if kind not in known
        )
    if errors:
        raise DomainErrors(errors)
    async with atomic():
        # Two first saves at once: get_or_create retries the lookup after the other's insert won.
        preference, _ = await NotificationPreference.get_or_create(
            user_id=user.id, defaults={"updated_at": clock.now()}
        )
        preference = await NotificationPreference.filter(id=preference.id).select_for_update().get()
        if change.language is not None:
            preference.language = change.language
        if change.push_enabled is not None:
            preference.push_enabled = change.push_enabled
        if change.sms_enabled is not None:
            preference.sms_enabled = change.sms_enabled
        if quiet is not None:
            preference.quiet_from_minute, preference.quiet_until_minute = quiet
        if muted is not None:
            preference.muted_kinds = muted
        preference.updated_at = clock.now()
        await preference.save()
    return preference
