"""Planning: each committed outbox row becomes the deliveries it calls for, once.

A planner is given one outbox row inside the planning transaction. It returns unsaved deliveries
and may write its own rows beside them (the in-app inbox), so a change is planned entirely or not
at all. On PostgreSQL rows are claimed FOR UPDATE SKIP LOCKED, so several workers plan side by side.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from delivery.models import Delivery
from kernel.outbox import OutboxEvent

Planner = Callable[[OutboxEvent], Awaitable[Sequence[Delivery]]]
