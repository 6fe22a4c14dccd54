"""Who may see what in reports: cases, reports, the public map, the routing data, categories,
jurisdictions and departments. Queues and statistics are views of cases and follow the same lines.

- Categories, jurisdictions and departments: everyone. The catalog, the map of areas and the city's
  directory are public data (which department handles a case shows on the resident's own case).
- Routing rules: admins and dispatchers.
- A case in full: dispatchers and admins every case; staff the cases with their department (the
  case's staff); residents and chiefs the cases they reported; the system itself (no user) every case.
  How it was routed, its SLA policy, its assignee, its event log and its extension requests: the
  case's staff only.
- A case's reports and ratings: all of them to the case's staff, a reporter's own to that reporter.
- A report on its own (`node`, `myReports`): its reporter only.
- Public cases (the map): every case marked public (routed by a rule or a dispatcher, so triage spam
  never shows), to anyone; the PublicCase type leaves out reporters and evidence.
- Queues: staff their own department's; dispatchers and admins any department's and the triage queue.
- Statistics: staff their own department's; dispatchers and admins any.
- Photos of a case (`photo_standings`, used by media.access): a report's photos and their original
  and EXIF to the case's staff; its resolution photos also to its reporters (no original, no EXIF).
  A case's photos (its reports' and its resolution's) are on the public map exactly while the case
  is (`case_photo_publicity`): a rejected case takes them off, and a merged report's photos follow
  the case it was merged into.
- The area view (chiefs, `patrols.area_cases`): residents' cases located in a chief's areas, read only,
  without anything that names or places a resident: no reporters, reports, descriptions, photos,
  evidence or exact point; the point shown is the public one. Rejected and merged cases are left out
  (`area_view_cases`); which areas are a chief's, patrols decides.
A case, report or queue someone may not see answers exactly like a missing one.

Predicates over loaded rows are plain functions; where SQL does the filtering the answer is a
queryset (or the rows it finds).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Protocol, TypeVar

from tortoise.expressions import Subquery
from tortoise.queryset import QuerySet

from identity.models import Role, User
from identity.service import Principal
from kernel.errors import forbidden, not_found
from media.access import Standing
from media.models import Photo
from reports.lifecycle import Action, Status
from reports.models import (
    Case,
    CaseEvent,
    Category,
    Department,
    Jurisdiction,
    Report,
    ReportSource,
    RoutingRule,
)

OFFICE = (Role.DISPATCHER, Role.ADMIN)  # who sees every case, queue and figure


class Reported(Protocol):
    """A row one resident wrote about a case: a report, a rating."""

    @property
    def reporter_id(self) -> int: ...


ReportedT = TypeVar("ReportedT", bound=Reported)


# --- the public catalog, areas and directory --------------------------------------------------------


def visible_categories(principal: Principal | None, rows: Sequence[Category]) -> Sequence[Category]:
    return rows  # the catalog is public


def visible_jurisdictions(
    principal: Principal | None, rows: Sequence[Jurisdiction]
) -> Sequence[Jurisdiction]:
    return rows  # the map of jurisdictions is public data


def visible_departments(
    principal: Principal | None, ids: Collection[int] | None = None
) -> QuerySet[Department]:
    """The departments `principal` may see (every one: the city's directory), those among `ids` when given."""
    departments = Department.all()
    return departments if ids is None else departments.filter(id__in=list(ids))


def visible_department_rows(principal: Principal | None, rows: Sequence[Department]) -> Sequence[Department]:
    """The loaded departments `principal` may see: the same rule as `visible_departments`, no query."""
    return rows


# --- routing rules ----------------------------------------------------------------------------------


def sees_routing_rules(principal: Principal | None) -> bool:
    return principal is not None and principal.role in OFFICE


def visible_routing_rules(principal: Principal | None, rows: Sequence[RoutingRule]) -> Sequence[RoutingRule]:
    return rows if sees_routing_rules(principal) else []


def routing_rules(principal: Principal) -> QuerySet[RoutingRule]:
    """The routing table for admins and dispatchers; anyone else is FORBIDDEN."""
    if not sees_routing_rules(principal):
        raise forbidden()
    return RoutingRule.all()


# --- cases ------------------------------------------------------------------------------------------


def in_case_department(user: User, case: Case) -> bool:
    return user.department_id is not None and user.department_id == case.department_id


def is_case_staff(user: User | None, case: Case) -> bool:
    """Who sees how a case was routed and its internal notes: dispatchers, admins, its department's staff."""
    if user is None:
        return False
    return user.role in OFFICE or (user.role is Role.STAFF and in_case_department(user, case))


async def is_reporter(user: User | None, case_id: int) -> bool:
    return user is not None and await Report.exists(case_id=case_id, reporter_id=user.id)


async def case_for(
    user: User | None, case_id: int, *field: str, need_reporter: bool = True
) -> tuple[Case, bool]:
    """The case and whether `user` (None: the system) reported it; NOT_FOUND when they may not see it.

    `need_reporter=False` skips the reporter lookup for people who see the case by office (staff of
    its department, dispatchers); the answer is then False for them.
    """
    case = await Case.get_or_none(id=case_id)
    if case is None:
        raise not_found("case", *field)
    by_office = user is None or is_case_staff(user, case)
    if by_office and not need_reporter:
        return case, False
    reporter = await is_reporter(user, case_id)
    if by_office or reporter:
        return case, reporter
    raise not_found("case", *field)


async def visible_cases(principal: Principal | None, rows: Sequence[Case]) -> list[Case]:
    """The cases among `rows` the caller may see in full, in order (at most one query)."""
    if principal is None:
        return []
    user = principal.user
    if user.role in OFFICE:
        return list(rows)
    seen = {case.id for case in rows if is_case_staff(user, case)}
    others = [case.id for case in rows if case.id not in seen]
    if others:
        reported = Report.filter(case_id__in=others, reporter_id=user.id).values_list("case_id")
        seen |= {case_id for (case_id,) in await reported}
    return [case for case in rows if case.id in seen]


def seen_on_case(principal: Principal | None, case: Case, rows: Sequence[ReportedT]) -> list[ReportedT]:
    """A case's reports or ratings the caller may see: all for its staff, a reporter's own for them."""
    if principal is None:
        return []
    if is_case_staff(principal.user, case):
        return list(rows)
    return [row for row in rows if row.reporter_id == principal.user.id]


# --- reports ----------------------------------------------------------------------------------------


def visible_reports(principal: Principal | None, rows: Sequence[Report]) -> list[Report]:
    """A report on its own is its reporter's."""
    if principal is None:
        return []
    return [row for row in rows if row.reporter_id == principal.user.id]


def own_reports(principal: Principal) -> QuerySet[Report]:
    return Report.filter(reporter_id=principal.user.id)


# --- the public map ---------------------------------------------------------------------------------


# The map's rule as (column, value), for readers that filter in SQL (Open311's request pages).
PUBLIC_RULE = ("public", True)


def public_cases() -> QuerySet[Case]:
    """The cases anyone may see on the map."""
    column, value = PUBLIC_RULE
    return Case.filter(**{column: value})


# Cases the area view leaves out: spam and invalid reports, and duplicates merged into another case.
AREA_VIEW_HIDDEN = (Status.REJECTED, Status.MERGED)


def area_view_cases(min_lat: float, min_lon: float, max_lat: float, max_lon: float) -> QuerySet[Case]:
    """Residents' cases whose exact point is inside the box, for the chiefs' read-only area view;
    the caller narrows them to its geometry. Patrol hand-offs are the chiefs' own (their cases)."""
    resident = Subquery(Report.filter(source=ReportSource.RESIDENT).values("case_id"))
    return Case.filter(
        latitude__gte=min_lat,
        latitude__lte=max_lat,
        longitude__gte=min_lon,
        longitude__lte=max_lon,
        id__in=resident,
    ).exclude(status__in=list(AREA_VIEW_HIDDEN))


def visible_public_cases(principal: Principal | None, rows: Sequence[Case]) -> list[Case]:
    """The loaded cases among `rows` that are on the map: the rule of `public_cases`."""
    return [case for case in rows if case.public]


async def may_join(reporter_id: int, case: Case) -> bool:
    """A resident may add a "me too" only to a case they can see: one on the map or one they reported."""
    return case.public or await Report.exists(case_id=case.id, reporter_id=reporter_id)


# --- queues and statistics --------------------------------------------------------------------------


async def queue_department(user: User, department_id: int | None) -> int | None:
    """The queue `user` may read when asking for `department_id`'s (None: the triage queue)."""
    if user.role in OFFICE:
        if department_id is not None and not await Department.exists(id=department_id):
            raise not_found("department", "departmentId")
        return department_id
    if user.role is not Role.STAFF:
        raise forbidden("Only staff, dispatchers and admins see queues.")
    if department_id is None:
        raise forbidden("The triage queue is the dispatchers'.")
    if department_id != user.department_id:
        raise not_found("department", "departmentId")  # another department's queue is not theirs to know
    return department_id


def may_follow_queue(user: User, department_id: int | None) -> bool:
    """Live updates of a queue: its department's staff, and dispatchers and admins for any queue."""
    own = user.role is Role.STAFF and department_id is not None and user.department_id == department_id
    return user.role in OFFICE or own


def statistics_department(user: User, department_id: int | None) -> int | None:
    """The department whose statistics `user` may read when asking for `department_id`'s (None: all)."""
    if user.role in OFFICE:
        return department_id
    if user.role is Role.STAFF and user.department_id is not None:
        if department_id not in (None, user.department_id):
            raise forbidden("Staff see the statistics of their own department only.")
        return user.department_id
    raise forbidden("Statistics are for staff, dispatchers and administrators.")


# --- photos -----------------------------------------------------------------------------------------


async def photo_standings(principal: Principal, photos: Sequence[Photo]) -> dict[int, Standing]:
    """What the cases holding `photos` grant `principal` (media.access registers this as a holder).

    A report's photos: EVIDENCE for the case's staff (its department's staff, dispatchers, admins).
    A case's resolution photos: EVIDENCE for the case's staff, SEES for its reporters. Nobody else
    gets anything from a case (other reporters, other departments' staff, chiefs); the owner and the
    public map are media.access's. Photos are found through their owners' reports and resolutions
    (only an owner attaches a photo), so three queries for any number of photos.
    """
    user = principal.user
    wanted = {p.id for p in photos}
    owners = list({p.owner_id for p in photos})
    holders: dict[int, list[tuple[int, Standing]]] = {}  # photo id -> (case id, what the case staff get)
    for case_id, photo_ids in await Report.filter(reporter_id__in=owners).values_list("case_id", "photo_ids"):
        for photo_id in set(photo_ids or ()) & wanted:
            holders.setdefault(photo_id, []).append((case_id, Standing.NONE))
    resolved = CaseEvent.filter(actor_id__in=owners, kind=Action.RESOLVE.value).values_list("case_id")
    resolving = {case_id for (case_id,) in await resolved}
    case_ids = {*resolving, *(case_id for held in holders.values() for case_id, _ in held)}
    cases = {case.id: case for case in await Case.filter(id__in=list(case_ids))}
    for case_id in resolving & cases.keys():
        for photo_id in set(cases[case_id].resolution_photo_ids or ()) & wanted:
            holders.setdefault(photo_id, []).append((case_id, Standing.SEES))
    reported: set[int] = set()
    if user.role not in OFFICE:
        lookup = {c for h in holders.values() for c, reporters_get in h if reporters_get}
        if lookup:
            mine = Report.filter(case_id__in=list(lookup), reporter_id=user.id).values_list("case_id")
            reported = {case_id for (case_id,) in await mine}
    result: dict[int, Standing] = {}
    for photo_id, held in holders.items():
        best = Standing.NONE
        for case_id, reporters_get in held:
            if case_id in cases and is_case_staff(user, cases[case_id]):
                best = Standing.EVIDENCE
                break
            if case_id in reported:
                best = max(best, reporters_get)
        if best:
            result[photo_id] = best
    return result


async def case_photo_publicity(case_ids: Collection[int]) -> tuple[list[int], list[int]]:
    """The photos the cases hold, as (public, not public): a case's reports' photos and its resolution
    photos are public exactly while the case is (media.access serves a public photo's renditions to
    anyone). Two queries for any number of cases."""
    public: dict[int, bool] = {}
    held: dict[int, int] = {}  # photo id -> the case holding it
    for case_id, is_public, resolution in await Case.filter(id__in=list(case_ids)).values_list(
        "id", "public", "resolution_photo_ids"
    ):
        public[case_id] = is_public
        held.update((int(p), case_id) for p in resolution or ())
    reports = Report.filter(case_id__in=list(public)).values_list("case_id", "photo_ids")
    for case_id, photo_ids in await reports:
        held.update((int(p), case_id) for p in photo_ids or ())
    shown = [photo_id for photo_id, case_id in held.items() if public[case_id]]
    hidden = [photo_id for photo_id, case_id in held.items() if not public[case_id]]
    return shown, hidden
