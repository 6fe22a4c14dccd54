"""Managing who is responsible: assignments (admins) and delegations (a chief to an assistant)."""

from __future__ import annotations

from datetime import date

from identity.models import Role, User
from kernel.errors import invalid, not_found
from patrols.models import ChiefAssignment, Delegation, PatrolArea
from patrols.rules import ChiefKind, ChiefLevel

MAX_DELEGATION_DAYS = 366


async def assign_chief(
    *,
    chief_id: int,
    area_id: int,
    level: ChiefLevel,
    kind: ChiefKind,
    valid_from: date,
    valid_to: date | None,
) -> ChiefAssignment:
    if not await User.exists(id=chief_id, role=Role.CHIEF, is_active=True):
        raise not_found("chief", "input", "chiefId")
    if not await PatrolArea.exists(id=area_id):
        raise not_found("patrol area", "input", "areaId")
    if valid_to is not None and valid_to < valid_from:
        raise invalid("validTo is before validFrom.", "input", "validTo")
    return await ChiefAssignment.create(
        chief_id=chief_id, area_id=area_id, level=level, kind=kind, valid_from=valid_from, valid_to=valid_to
    )


async def end_assignment(assignment_id: int, valid_to: date) -> ChiefAssignment:
    """Close an assignment; it stays as history so past periods are judged by who was responsible."""
    assignment = await ChiefAssignment.get_or_none(id=assignment_id)
    if assignment is None:
        raise not_found("assignment", "input", "assignmentId")
    if valid_to < assignment.valid_from:
        raise invalid("validTo is before the assignment started.", "input", "validTo")
    assignment.valid_to = valid_to
    await assignment.save(update_fields=["valid_to"])
    return assignment


async def delegate(chief: User, *, assistant_id: int, valid_from: date, valid_to: date) -> Delegation:
    """A chief lets an assistant patrol for them; the assistant keeps their own account."""
    if assistant_id == chief.id:
        raise invalid("You cannot delegate to yourself.", "input", "assistantId")
    if not await ChiefAssignment.exists(chief_id=chief.id):
        raise invalid("Only a chief with an assignment can delegate patrolling.", "input")
    if not await User.exists(id=assistant_id, role__in=[Role.CHIEF, Role.STAFF], is_active=True):
        raise not_found("assistant (a chief or staff account)", "input", "assistantId")
    if valid_to < valid_from:
        raise invalid("validTo is before validFrom.", "input", "validTo")
    if (valid_to - valid_from).days >= MAX_DELEGATION_DAYS:
        raise invalid(f"A delegation lasts at most {MAX_DELEGATION_DAYS} days.", "input", "validTo")
    return await Delegation.create(
        chief_id=chief.id, assistant_id=assistant_id, valid_from=valid_from, valid_to=valid_to
    )
