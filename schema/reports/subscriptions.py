"""Live updates over graphql-transport-ws: one case, or a department's queue. Who may follow what, and
whether each update still shows the case, is `reports.access`'s answer.

A subscription lives only as long as the session behind its socket: it is checked again before each
update and after every quiet `session_recheck_seconds`, and the stream ends with UNAUTHENTICATED once
the session was signed out or revoked, or its account deactivated or given another role.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator

import strawberry

from identity.models import User
from identity.service import reauthenticate
from kernel.errors import DomainError, forbidden, not_found
from kernel.events import Message
from reports import access, casework, models
from schema.context import Info
from schema.node import decode_id
from schema.reports.types import CaseNode, CaseUpdate, global_id


async def _visible(user: User, case_id: int) -> models.Case | None:
    """The case as it is now, or None when `user` may not (or no longer) see it."""
    try:
        case, _ = await access.case_for(user, case_id)
    except DomainError:
        return None
    return case


async def _signed_in_user(info: Info) -> User:
    """The socket's caller, as the database has them now (the socket authenticated once, maybe long ago)."""
    return (await reauthenticate(info.context.require_principal())).user


@contextlib.asynccontextmanager
async def _while_signed_in(info: Info, *channels: str) -> AsyncIterator[AsyncIterator[Message]]:
    """The channels' messages for as long as the caller's session stands; raises UNAUTHENTICATED
    (which ends the subscription with that error) when a check finds it ended."""
    principal = info.context.require_principal()
    every = info.context.identity.session_recheck_seconds
    services = info.context.services
    assert services is not None
    async with services.events.subscribe(*channels) as messages:
        # The next message is awaited in a task of its own, so a quiet wait can time out for a check
        # without cancelling (and so closing) the stream.
        pending = asyncio.ensure_future(anext(messages))

        async def checked() -> AsyncIterator[Message]:
            nonlocal pending
            while True:
                done, _ = await asyncio.wait({pending}, timeout=every)
                await reauthenticate(principal)
                if done:
                    try:
                        message = pending.result()
                    except StopAsyncIteration:  # the bus closed (shutdown)
                        return
                    yield message
                    pending = asyncio.ensure_future(anext(messages))

        try:
            yield checked()
        finally:
            # Ended before the stream is left, so the bus unsubscribes a listener that is no longer reading.
            pending.cancel()
            await asyncio.wait({pending})
            if not pending.cancelled():
                pending.exception()  # retrieved, so asyncio logs nothing


@strawberry.type
class CaseworkSubscription:
    @strawberry.subscription(
        description="Changes to one case, for its reporters and staff. Authenticate in connection_init."
    )
    async def case_updated(self, info: Info, case_id: strawberry.ID) -> AsyncGenerator[CaseUpdate, None]:
        user = await _signed_in_user(info)
        db_id = decode_id(case_id, "Case", "caseId")
        if await _visible(user, db_id) is None:
            raise not_found("case", "caseId")
        async with _while_signed_in(info, casework.case_channel(db_id)) as messages:
            async for message in messages:
                # Checked per event: a department that returned the case stops hearing about it.
                case = await _visible(user, db_id)
                if case is None:
                    return
                yield CaseUpdate(kind=str(message["kind"]), case=CaseNode.from_model(case), case_id=case_id)

    @strawberry.subscription(
        description="Cases entering, changing in or leaving a department's queue (null: the triage queue). "
        "For the department's staff, dispatchers and admins."
    )
    async def department_queue_updated(
        self, info: Info, department_id: strawberry.ID | None = None
    ) -> AsyncGenerator[CaseUpdate, None]:
        user = await _signed_in_user(info)
        department = decode_id(department_id, "Department", "departmentId") if department_id else None
        if not access.may_follow_queue(user, department):
            raise forbidden("Only the department's staff and dispatchers follow this queue.")
        async with _while_signed_in(info, casework.department_channel(department)) as messages:
            async for message in messages:
                case_id = int(message["case"])
                case = await _visible(user, case_id)
                node = CaseNode.from_model(case) if case is not None else None
                yield CaseUpdate(kind=str(message["kind"]), case=node, case_id=global_id("Case", case_id))
