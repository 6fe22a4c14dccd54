"""Who may see and manage webhooks: admins only. Endpoints name integrators' systems and their
delivery logs show what left the server; nobody else sees that they exist."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from identity.models import Role
from identity.service import Principal

T = TypeVar("T")


def manages_webhooks(principal: Principal | None) -> bool:
    return principal is not None and principal.role == Role.ADMIN


def visible(principal: Principal | None, rows: Sequence[T]) -> Sequence[T]:
    """Endpoints and webhook deliveries: all of them to an admin, none to anyone else."""
    return rows if manages_webhooks(principal) else []
