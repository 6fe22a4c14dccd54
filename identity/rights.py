"""Residents' rights over their account: download their data, delete the account, recover it on a new phone.

An account's data is spread over the domains above identity (reports, photos, notifications), which
identity may not import. Each of them registers an `AccountPart` (the server does, as it registers
photo holders): what the part exports for its owner, what it erases when the account is deleted and
how it moves one account's rows to another when a new device recovers an account. A part that is not
registered contributes nothing.

- Export (`export_account`): the caller's own account only; there is no way to name another account.
- Delete (`delete_account`): residents only. The account row stays (reports keep their reporter so
  cases and statistics stay the same) but its personal fields are cleared, it is deactivated, every
  session ends and the parts erase or anonymize what they hold.
- Recover (`recover_onto`, from `service.confirm_phone`): a fresh anonymous device account that
  proves, with the code sent to it, a number held by another resident's account becomes that account:
  its rows move over, the device's key now signs in to it, and the throwaway account is retired.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from identity.models import OtpChallenge, Role, Session, User
from kernel import clock
from kernel.database import atomic
from kernel.errors import forbidden, invalid


@dataclass(frozen=True)
class AccountPart:
    """What one domain holds of an account.

    export(user_id): JSON-ready data of the account's own rows (key: the part's name).
    erase(user_id): on deletion, delete or anonymize those rows; statistics must not change.
    move(from_user_id, to_user_id): on recovery, re-point the rows of `from` to `to`.
    """

    export: Callable[[int], Awaitable[Any]]
    erase: Callable[[int], Awaitable[None]]
    move: Callable[[int, int], Awaitable[None]]


_parts: dict[str, AccountPart] = {}


def register_part(name: str, part: AccountPart) -> None:
    """Add a domain's share of accounts (idempotent per name; the server registers them)."""
    _parts[name] = part


def _account_fields(user: User) -> dict[str, Any]:
    return {
        "id": user.id,
        "role": user.role.value,
        "displayName": user.display_name,
        "phone": user.phone,
        "phoneVerifiedAt": user.phone_verified_at.isoformat() if user.phone_verified_at else None,
        "createdAt": user.created_at.isoformat(),
    }


async def export_account(user: User) -> dict[str, Any]:
    """Everything the account's owner has here, as one JSON document. Residents only."""
    if user.role != Role.CITIZEN:
        raise forbidden("Only residents download their data here; staff ask an administrator.")
    document: dict[str, Any] = {"exportedAt": clock.now().isoformat(), "account": _account_fields(user)}
    for name, part in sorted(_parts.items()):
        document[name] = await part.export(user.id)
    return document


async def delete_account(user: User, confirm: bool) -> None:
    """Delete a resident's account: personal fields cleared, sessions ended, the parts erased.

    The row stays, deactivated, so the reports it filed stay in their cases (anonymized by the reports
    part) and every count stays the same. A second deletion cannot happen through the API: the
    deleted account has no live session left (UNAUTHENTICATED).
    """
    if not confirm:
        raise invalid("Deleting the account cannot be undone; set confirm to true.", "input", "confirm")
    if user.role != Role.CITIZEN:
        raise forbidden(
            "Only residents delete their own account; staff accounts are closed by an administrator."
        )
    now = clock.now()
    async with atomic():
        # Lock-free re-check inside the transaction: a concurrent deletion already cleared it.
        if not await User.filter(id=user.id, is_active=True).update(is_active=False):
            raise forbidden("This account has been deleted or blocked.")
        for _, part in sorted(_parts.items()):
            await part.erase(user.id)
        await OtpChallenge.filter(user_id=user.id).delete()
        await Session.filter(user_id=user.id, revoked_at=None).update(
            revoked_at=now, revoked_reason="deleted"
        )
        await User.filter(id=user.id).update(
            phone=None,
            phone_verified_at=None,
            display_name="",
            device_key_hash=None,
            username=None,
            password_hash=None,
        )


def is_fresh_device_account(user: User) -> bool:
    """An anonymous resident that never proved a number: what a new phone starts as."""
    return user.role == Role.CITIZEN and user.phone is None and user.username is None and user.is_active


def may_recover(holder: User) -> bool:
    """Whether an account can be taken over on a new device by proving its number: active residents
    only (a staff or chief account is signed in to with its password, never by a code alone)."""
    return holder.role == Role.CITIZEN and holder.is_active


async def recover_onto(device: User, holder: User, *, end_other_sessions: bool) -> None:
    """Move the fresh device account `device` onto `holder` (inside the caller's transaction).

    The caller has proved the holder's number with a code. The device's rows move to the holder, the
    device's key now signs in to the holder, the device account is retired (deactivated, its sessions
    ended). The holder's other devices keep their sessions unless `end_other_sessions`.
    """
    now = clock.now()
    for _, part in sorted(_parts.items()):
        await part.move(device.id, holder.id)
    if end_other_sessions:
        await Session.filter(user_id=holder.id, revoked_at=None).update(
            revoked_at=now, revoked_reason="recovered"
        )
    await Session.filter(user_id=device.id, revoked_at=None).update(revoked_at=now, revoked_reason="merged")
    key_hash = device.device_key_hash
    await User.filter(id=device.id).update(device_key_hash=None, is_active=False)
    if key_hash is not None:
        await User.filter(id=holder.id).update(device_key_hash=key_hash)
        holder.device_key_hash = key_hash
