"""Managing who is responsible: assignments (admins), delegations (a chief to an assistant) and the
enrollment of social supervisors (民间河长) in areas (admins and the chief office)."""

from __future__ import annotations

from datetime import date, timedelta

from tortoise.exceptions import IntegrityError

from identity.models import Role, User
from kernel.database import atomic
from kernel.errors import forbidden, invalid, not_found
from patrols import signboard
from patrols.access import Viewer, may_end_delegation, visible_delegations
from patrols.models import ChiefAssignment, Delegation, PatrolArea, VolunteerEnrollment
from patrols.rules import ChiefKind, ChiefLevel

MAX_DELEGATION_DAYS = 366
_VOLUNTEER_NOT_CHIEF = (
    "A social supervisor (民间河长) is counted apart from the chiefs: they cannot hold a chief's"
    " assignment nor patrol for one. Enroll them in the area instead."
)


async def assign_chief(
    *,
    chief_id: int,
    area_id: int,
    level: ChiefLevel,
    kind: ChiefKind,
    valid_from: date,
    valid_to: date | None,
) -> ChiefAssignment:
    if await User.exists(id=chief_id, role=Role.VOLUNTEER):
        raise invalid(_VOLUNTEER_NOT_CHIEF, "input", "chiefId")
    if not await User.exists(id=chief_id, role=Role.CHIEF, is_active=True):
        raise not_found("chief", "input", "chiefId")
    if not await PatrolArea.exists(id=area_id):
        raise not_found("patrol area", "input", "areaId")
    if valid_to is not None and valid_to < valid_from:
        raise invalid("validTo is before validFrom.", "input", "validTo")
    assignment = await ChiefAssignment.create(
        chief_id=chief_id, area_id=area_id, level=level, kind=kind, valid_from=valid_from, valid_to=valid_to
    )
    await signboard.forget_assignment(assignment)  # the area's signboard changes from `valid_from`
    return assignment


async def end_assignment(assignment_id: int, valid_to: date) -> ChiefAssignment:
    """Close an assignment; it stays as history so past periods are judged by who was responsible."""
    assignment = await ChiefAssignment.get_or_none(id=assignment_id)
    if assignment is None:
        raise not_found("assignment", "input", "assignmentId")
    if valid_to < assignment.valid_from:
        raise invalid("validTo is before the assignment started.", "input", "validTo")
    assignment.valid_to = valid_to
    await assignment.save(update_fields=["valid_to"])
    await signboard.forget_assignment(assignment)  # the area's signboard changes the day after `valid_to`
    return assignment


async def delegate(chief: User, *, assistant_id: int, valid_from: date, valid_to: date) -> Delegation:
    """A chief lets an assistant patrol for them; the assistant keeps their own account."""
    if assistant_id == chief.id:
        raise invalid("You cannot delegate to yourself.", "input", "assistantId")
    if not await ChiefAssignment.exists(chief_id=chief.id):
        raise invalid("Only a chief with an assignment can delegate patrolling.", "input")
    if await User.exists(id=assistant_id, role=Role.VOLUNTEER):
        raise invalid(_VOLUNTEER_NOT_CHIEF, "input", "assistantId")
    if not await User.exists(id=assistant_id, role__in=[Role.CHIEF, Role.STAFF], is_active=True):
        raise not_found("assistant (a chief or staff account)", "input", "assistantId")
    if valid_to < valid_from:
        raise invalid("validTo is before validFrom.", "input", "validTo")
    if (valid_to - valid_from).days >= MAX_DELEGATION_DAYS:
        raise invalid(f"A delegation lasts at most {MAX_DELEGATION_DAYS} days.", "input", "validTo")
    return await Delegation.create(
        chief_id=chief.id, assistant_id=assistant_id, valid_from=valid_from, valid_to=valid_to
    )


async def end_delegation(viewer: Viewer, delegation_id: int, valid_to: date, today: date) -> Delegation:
    """End a delegation early: the assistant's patrols count for the chief up to `valid_to` (inclusive)
    only. The past stays as it was (`valid_to` is yesterday at the earliest); a delegation that has not
    started yet is cancelled with `valid_to` the day before it starts. Ending it again on the same day
    answers the same; a later day than it already ends would extend it and is refused."""
    async with atomic():
        delegation = await visible_delegations(viewer).select_for_update().get_or_none(id=delegation_id)
        if delegation is None:
            raise not_found("delegation", "input", "delegationId")
        if not may_end_delegation(viewer, delegation):
            raise forbidden("Only the chief who delegated (or the river chief office) ends a delegation.")
        if valid_to == delegation.valid_to:
            return delegation
        if valid_to > delegation.valid_to:
            raise invalid(
                "The delegation already ends earlier; ending it cannot extend it.", "input", "validTo"
            )
        cancel = delegation.valid_from - timedelta(days=1)
        if valid_to < delegation.valid_from and not (valid_to == cancel and delegation.valid_from > today):
            raise invalid(
                "validTo is before the delegation started: give the day before it starts to cancel a "
                "delegation that has not started yet.",
                "input",
                "validTo",
            )
        if valid_to < today - timedelta(days=1):
            raise invalid("A delegation ends yesterday at the earliest: the past stays.", "input", "validTo")
        delegation.valid_to = valid_to
        await delegation.save(update_fields=["valid_to"])
    return delegation


async def enroll_volunteer(
    enrolled_by: User, *, volunteer_id: int, area_id: int, valid_from: date, valid_to: date | None
) -> VolunteerEnrollment:
    """Let a social supervisor patrol an area from a date; enrolling again for the same area and
    start answers the first enrollment (retry-safe)."""
    if not await User.exists(id=volunteer_id, role=Role.VOLUNTEER, is_active=True):
        raise not_found("social supervisor (an account with the VOLUNTEER role)", "input", "volunteerId")
    if not await PatrolArea.exists(id=area_id):
        raise not_found("patrol area", "input", "areaId")
    if valid_to is not None and valid_to < valid_from:
        raise invalid("validTo is before validFrom.", "input", "validTo")
    same = VolunteerEnrollment.filter(volunteer_id=volunteer_id, area_id=area_id, valid_from=valid_from)
    existing = await same.first()
    if existing is None:
        try:
            async with atomic():
                return await VolunteerEnrollment.create(
                    volunteer_id=volunteer_id,
                    area_id=area_id,
                    valid_from=valid_from,
                    valid_to=valid_to,
                    enrolled_by_id=enrolled_by.id,
                )
        except IntegrityError:  # a concurrent retry won
            existing = await same.get()
    if existing.valid_to != valid_to:
        raise invalid("This enrollment exists with another end; end it instead.", "input", "validTo")
    return existing


async def end_enrollment(enrollment_id: int, valid_to: date) -> VolunteerEnrollment:
    enrollment = await VolunteerEnrollment.get_or_none(id=enrollment_id)
    if enrollment is None:
        raise not_found("enrollment", "input", "enrollmentId")
    if valid_to < enrollment.valid_from:
        raise invalid("validTo is before the enrollment started.", "input", "validTo")
    enrollment.valid_to = valid_to
    await enrollment.save(update_fields=["valid_to"])
    return enrollment
