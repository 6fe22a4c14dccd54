"""Who may see which accounts, and which of their details.

- Admins see every account; only they may list accounts.
- Staff and dispatchers see their colleagues (every account but residents'), so that names on
  cases mean something; residents stay hidden from them.
- Residents and chiefs see only themselves.
- A phone number is personal information: only its account's owner and admins see it.
An account someone may not see answers exactly like a missing one.
"""

from __future__ import annotations

from collections.abc import Iterable

from tortoise.queryset import QuerySet

from identity.models import Role, User
from identity.service import Principal
from kernel.errors import forbidden

STAFF_ROLES = frozenset({Role.STAFF, Role.DISPATCHER, Role.ADMIN})


def is_staff(principal: Principal | None) -> bool:
    """City staff of any kind: department staff, dispatchers, admins."""
    return principal is not None and principal.role in STAFF_ROLES


def may_see_user(principal: Principal | None, user: User) -> bool:
    if principal is None:
        return False
    if principal.role == Role.ADMIN or user.id == principal.user.id:
        return True
    return is_staff(principal) and user.role != Role.CITIZEN


def visible_users(principal: Principal | None, users: Iterable[User]) -> list[User]:
    """The accounts among `users` the principal may see, in order."""
    return [user for user in users if may_see_user(principal, user)]


def sees_phone(principal: Principal | None, user_id: int) -> bool:
    """Whether the principal may read the phone number of account `user_id`."""
    return principal is not None and (principal.user.id == user_id or principal.role == Role.ADMIN)


def listed_users(principal: Principal, role: Role | None = None) -> QuerySet[User]:
    """Every account (of `role`, when given), for an admin; anyone else is FORBIDDEN."""
    if principal.role != Role.ADMIN:
        raise forbidden()
    return User.all() if role is None else User.filter(role=role)
