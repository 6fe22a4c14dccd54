"""Who may see and manage webhooks: admins, and service accounts' keys with the scope
`webhooks:manage` (an integrator's system registering its own endpoints). Endpoints name integrators'
systems and their delivery logs show what left the server; nobody else sees that they exist."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from identity.models import Role
from identity.service import Principal
from identity.service_accounts import WEBHOOKS_MANAGE, key_has_scope
from kernel.errors import DomainError, ErrorCode, forbidden

T = TypeVar("T")


def manages_webhooks(principal: Principal | None) -> bool:
    if key_has_scope(principal, WEBHOOKS_MANAGE):
        return True
    return principal is not None and principal.scopes is None and principal.role == Role.ADMIN


def require_manager(principal: Principal | None) -> Principal:
    """The caller, if they manage webhooks; FORBIDDEN otherwise (UNAUTHENTICATED for nobody)."""
    if principal is None:
        raise DomainError(ErrorCode.UNAUTHENTICATED, "Sign in first.")
    if not manages_webhooks(principal):
        raise forbidden("Only administrators and API keys with webhooks:manage manage webhooks.")
    return principal


def visible(principal: Principal | None, rows: Sequence[T]) -> Sequence[T]:
    """Endpoints and webhook deliveries: all of them to an admin, none to anyone else."""
    return rows if manages_webhooks(principal) else []
