"""Who may see a patrol's track, its points and a chief's compliance.

Tracks say where a person was and when: sensitive personal information. They are visible to
- the account that recorded the patrol and the chief it counts for;
- that chief's supervisors: a chief holding an assignment, in force today, at a higher level
  (PROVINCE > CITY > COUNTY > TOWNSHIP > VILLAGE) on an area whose division code covers the patrolled
  area's (the leading digits of "999900" cover "999901"; the same code covers itself), of the same
  kind (a river chief supervises river chiefs, not lake or forest chiefs); patrollers are supervised
  by any chief above them;
- overseers: admins, and staff of the river-chief or forest-chief office (河长办 / 林长办, department
  kinds `river_chief_office`, `forest_chief_office`), which run assessments.
Social supervisors (民间河长, role VOLUNTEER) see their own patrols only: no chief's track, assignment
or compliance, and they may not act as a chief (`refuse_volunteer`).
Dispatchers and other staff do not see tracks; they see escalated observations as cases. The public
sees at most that an area was patrolled on a date. A patrol someone may not see answers exactly
like a missing one. Observations are visible like their patrol, and so are their photos (the
original and EXIF to the patrol's own chief and overseers only: `photo_standings`); an assignment
like its chief in that area. Patrol areas are public. A delegation is seen by the chief who gave it,
the assistant and overseers, and ended early by the chief or an overseer.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date

from tortoise.expressions import Q
from tortoise.queryset import QuerySet

from identity.models import Role
from identity.service import Principal
from kernel import clock
from kernel.errors import DomainError, ErrorCode, forbidden
from media.access import Standing
from media.models import Photo
from patrols.models import ChiefAssignment, Delegation, Observation, Patrol, PatrolArea, VolunteerEnrollment
from patrols.recording import local_date
from patrols.rules import ChiefKind, ChiefLevel
from reports.models import Department

RIVER_CHIEF_OFFICE = "river_chief_office"
FOREST_CHIEF_OFFICE = "forest_chief_office"
# The chief offices (河长办, 林长办): they run assessments and take the triage of hand-offs.
OFFICE_KINDS = (RIVER_CHIEF_OFFICE, FOREST_CHIEF_OFFICE)
LEVEL_RANK = {level: rank for rank, level in enumerate(ChiefLevel)}  # PROVINCE 0 ... VILLAGE 4


def commands_kind(commander: ChiefKind, subordinate: ChiefKind) -> bool:
    return subordinate is ChiefKind.PATROLLER or commander is subordinate


def region_prefix(code: str) -> str:
    """The significant digits of a division code: "999900" -> "9999", "999901" -> "999901"."""
    while code.endswith("00") and len(code) > 2:
        code = code[:-2]
    return code


def in_force(assignment: ChiefAssignment, day: date) -> bool:
    return assignment.valid_from <= day and (assignment.valid_to is None or day <= assignment.valid_to)


@dataclass(frozen=True, slots=True)
class Viewer:
    """The caller's standing, loaded once per request."""

    user_id: int | None
    overseer: bool
    # (level rank, region prefix, kind) of each assignment in force today
    commands: tuple[tuple[int, str, ChiefKind], ...]

    @classmethod
    async def load(cls, principal: Principal | None, today: date) -> Viewer:
        if principal is None:
            return cls(None, False, ())
        user = principal.user
        overseer = principal.role == Role.ADMIN
        if principal.role == Role.STAFF and user.department_id is not None:
            overseer = await Department.exists(id=user.department_id, kind__in=OFFICE_KINDS)
        commands: tuple[tuple[int, str, ChiefKind], ...] = ()
        if principal.role == Role.CHIEF:
            rows = await ChiefAssignment.filter(
                Q(valid_to=None) | Q(valid_to__gte=today), chief_id=user.id, valid_from__lte=today
            ).values_list("level", "area__admin_region", "kind")
            commands = tuple(
                (LEVEL_RANK[ChiefLevel(level)], region_prefix(region), ChiefKind(kind))
                for level, region, kind in rows
            )
        return cls(user.id, overseer, commands)

    def supervises(self, level: ChiefLevel, region: str, kind: ChiefKind) -> bool:
        """Whether the caller commands a `kind` chief of `level` on an area in division `region`."""
        rank = LEVEL_RANK[level]
        return any(
            mine < rank and region.startswith(prefix) and commands_kind(my_kind, kind)
            for mine, prefix, my_kind in self.commands
        )

    def sees_chief(self, chief_id: int, standing: Iterable[tuple[ChiefLevel, str, ChiefKind]]) -> bool:
        """`standing`: the chief's (level, area region, kind) in the matter at hand."""
        if self.overseer or chief_id == self.user_id:
            return True
        return any(self.supervises(*s) for s in standing)

    async def visible_patrols(self, patrols: list[Patrol]) -> list[Patrol]:
        """The patrols the caller may see, in order; one query for any number of patrols."""
        if self.user_id is None:
            return []
        if self.overseer:
            return patrols
        own = {p.id for p in patrols if self.user_id in (p.chief_id, p.counted_for_id)}
        rest = [p for p in patrols if p.id not in own]
        if rest and self.commands:
            rows = await ChiefAssignment.filter(
                chief_id__in={p.counted_for_id for p in rest}, area_id__in={p.area_id for p in rest}
            ).values_list("chief_id", "area_id", "level", "area__admin_region", "kind")
            standing: dict[tuple[int, int], list[tuple[ChiefLevel, str, ChiefKind]]] = {}
            for chief_id, area_id, level, region, kind in rows:
                standing.setdefault((chief_id, area_id), []).append(
                    (ChiefLevel(level), region, ChiefKind(kind))
                )
            own |= {
                p.id
                for p in rest
                if any(self.supervises(*s) for s in standing.get((p.counted_for_id, p.area_id), []))
            }
        return [p for p in patrols if p.id in own]


def refuse_volunteer(principal: Principal, action: str) -> None:
    """A social supervisor acting as a chief: FORBIDDEN, saying what they may do instead."""
    if principal.role == Role.VOLUNTEER:
        raise forbidden(
            f"Social supervisors (民间河长) cannot {action}: that is a chief's duty. Record the problem as"
            " an observation; the chief office sees your patrols."
        )


def volunteer_patrols(principal: Principal) -> QuerySet[Patrol]:
    """Patrols recorded by social supervisors: all of them for overseers, a volunteer's own for a
    volunteer; anyone else is FORBIDDEN. Kept apart from the chiefs' patrols and figures."""
    if principal.role == Role.VOLUNTEER:
        return Patrol.filter(by_volunteer=True, chief_id=principal.user.id)
    return Patrol.filter(by_volunteer=True)


async def may_list_volunteer_patrols(principal: Principal) -> bool:
    return principal.role == Role.VOLUNTEER or (await viewer_of(principal)).overseer


async def viewer_of(principal: Principal | None) -> Viewer:
    """The caller's standing on today's local date."""
    return await Viewer.load(principal, local_date(clock.now()))


def check_office_reader(principal: Principal | None, viewer: Viewer) -> None:
    """The office figures (patrols.office) are for the river-chief office and admins (everything) and
    for chiefs (their own areas and those of the chiefs they supervise)."""
    if principal is None:
        raise DomainError(ErrorCode.UNAUTHENTICATED, "Sign in first.")
    if not (viewer.overseer or principal.role == Role.CHIEF):
        raise forbidden("The office figures are for chiefs and the river chief office.")


def check_method_manager(principal: Principal | None) -> None:
    """Only admins replace the city's assessment method."""
    if principal is None:
        raise DomainError(ErrorCode.UNAUTHENTICATED, "Sign in first.")
    if principal.role != Role.ADMIN:
        raise forbidden("Only administrators change the assessment method.")


def visible_areas(principal: Principal | None, areas: Sequence[PatrolArea]) -> Sequence[PatrolArea]:
    return areas  # the map of patrol areas is public


async def visible_patrols(principal: Principal | None, patrols: Sequence[Patrol]) -> list[Patrol]:
    """The patrols `principal` may see, in order; the caller's standing is loaded only when some of
    them are not the caller's own."""
    if principal is None:
        return []
    if all(principal.user.id in (p.chief_id, p.counted_for_id) for p in patrols):
        return list(patrols)
    return await (await viewer_of(principal)).visible_patrols(list(patrols))


async def visible_patrol(principal: Principal | None, patrol_id: int) -> Patrol | None:
    """The patrol, or None when it is missing or `principal` may not see it (the same answer)."""
    if principal is None:
        return None
    patrol = await Patrol.get_or_none(id=patrol_id)
    return patrol if patrol is not None and await visible_patrols(principal, [patrol]) else None


async def visible_observations(
    principal: Principal | None, observations: Sequence[Observation]
) -> list[Observation]:
    """The observations whose patrol `principal` may see, in order."""
    if principal is None or not observations:
        return []
    patrols = await Patrol.filter(id__in={o.patrol_id for o in observations})
    seen = {p.id for p in await visible_patrols(principal, patrols)}
    return [o for o in observations if o.patrol_id in seen]


async def visible_assignments(
    principal: Principal | None, assignments: Sequence[ChiefAssignment]
) -> list[ChiefAssignment]:
    """The assignments of chiefs `principal` may see in the assigned area, in order."""
    if principal is None or not assignments:
        return []
    viewer = await viewer_of(principal)
    regions = dict(
        await PatrolArea.filter(id__in={a.area_id for a in assignments}).values_list("id", "admin_region")
    )
    return [a for a in assignments if viewer.sees_chief(a.chief_id, [(a.level, regions[a.area_id], a.kind)])]


async def visible_enrollments(
    principal: Principal | None, enrollments: Sequence[VolunteerEnrollment]
) -> list[VolunteerEnrollment]:
    """A volunteer's own enrollments; all of them for overseers."""
    if principal is None or not enrollments:
        return []
    if all(e.volunteer_id == principal.user.id for e in enrollments):
        return list(enrollments)
    if (await viewer_of(principal)).overseer:
        return list(enrollments)
    return [e for e in enrollments if e.volunteer_id == principal.user.id]


def own_enrollments(principal: Principal) -> QuerySet[VolunteerEnrollment]:
    return VolunteerEnrollment.filter(volunteer_id=principal.user.id).order_by("-valid_from", "-id")


def own_patrols(principal: Principal) -> QuerySet[Patrol]:
    """Patrols the caller recorded or that count for them."""
    me = principal.user.id
    return Patrol.filter(Q(chief_id=me) | Q(counted_for_id=me))


def own_assignments(principal: Principal) -> QuerySet[ChiefAssignment]:
    """The caller's assignments, current and past, newest first."""
    return ChiefAssignment.filter(chief_id=principal.user.id).order_by("-valid_from", "-id")


async def photo_standings(principal: Principal, photos: Sequence[Photo]) -> dict[int, Standing]:
    """What the observations holding `photos` grant `principal` (a media.access holder): EVIDENCE
    (original, EXIF) for the chief whose patrol it is and for overseers; the chiefs above them SEE the
    photos. Others get nothing from a patrol (an escalated observation's photos reach the case's
    staff through the case's report). Two or three queries for any number of photos."""
    wanted = {p.id for p in photos}
    rows = await Observation.filter(patrol__chief_id__in={p.owner_id for p in photos}).values_list(
        "patrol_id", "photo_ids", "after_photo_ids"
    )
    held: dict[int, set[int]] = {}  # patrol id -> photo ids
    for patrol_id, photo_ids, after_photo_ids in rows:
        if found := (set(photo_ids or ()) | set(after_photo_ids or ())) & wanted:
            held.setdefault(patrol_id, set()).update(found)
    if not held:
        return {}
    patrols = await Patrol.filter(id__in=list(held))
    me = principal.user.id
    viewer = await viewer_of(principal)
    seen = {p.id for p in await viewer.visible_patrols(list(patrols))}
    result: dict[int, Standing] = {}
    for patrol in patrols:
        if patrol.id not in seen:
            continue
        own = me in (patrol.chief_id, patrol.counted_for_id) or viewer.overseer
        for photo_id in held[patrol.id]:
            standing = Standing.EVIDENCE if own else Standing.SEES
            result[photo_id] = max(result.get(photo_id, Standing.NONE), standing)
    return result


# --- delegations ------------------------------------------------------------------------------------


def visible_delegations(viewer: Viewer) -> QuerySet[Delegation]:
    """Delegations the caller gave (as the chief) or received (as the assistant); overseers see all."""
    if viewer.overseer:
        return Delegation.all()
    if viewer.user_id is None:
        return Delegation.filter(id__in=[])
    return Delegation.filter(Q(chief_id=viewer.user_id) | Q(assistant_id=viewer.user_id))


def may_end_delegation(viewer: Viewer, delegation: Delegation) -> bool:
    """The chief who gave it and overseers end a delegation early; the assistant only sees it."""
    return viewer.overseer or delegation.chief_id == viewer.user_id
