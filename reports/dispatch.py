"""The dispatchers' tools (调度): route a case, merge duplicates, split a report out, change a case's
category or priority. Each is one transaction with its events; lifecycle steps go through
`reports.casework.transition`, so the same version check and permissions apply.
"""

from __future__ import annotations

from identity.models import Role, User
from kernel import clock
from kernel.database import atomic
from kernel.errors import conflict, forbidden, invalid, not_found
from kernel.geo import LatLon
from reports import access, casework
from reports.casework import INPUT, Step
from reports.lifecycle import Action, Status, TransitionInput
from reports.models import Case, Priority, Report
from reports.service import OPEN_STATUSES, NewCase, open_case, route
from reports.store import Snapshot

DISPATCHERS = (Role.DISPATCHER, Role.ADMIN)


def _require_dispatcher(user: User) -> None:
    if user.role not in DISPATCHERS:
        raise forbidden("Only dispatchers may do this.")


async def route_case(
    snapshot: Snapshot,
    user: User,
    case_id: int,
    department_code: str,
    note: str | None,
    expected_version: int | None,
) -> Case:
    """Send a case from triage, or after a return, to a department (or move it to another one)."""
    given = TransitionInput(department_code=department_code, note=note)
    department = casework.department_of(snapshot, department_code)
    step = Step(Action.REROUTE, expected_version, given, department_id=department)
    return await casework.transition(case_id, user, step)


async def _recount(case_id: int) -> None:
    """Report and distinct-reporter counts from the reports themselves (a reporter counts once)."""
    reporters = [reporter for (reporter,) in await Report.filter(case_id=case_id).values_list("reporter_id")]
    await Case.filter(id=case_id).update(report_count=len(reporters), reporter_count=len(set(reporters)))


async def merge_cases(
    user: User,
    case_id: int,
    into_case_id: int,
    note: str | None,
    expected_version: int | None,
) -> tuple[Case, Case]:
    """Merge a duplicate into another case: its reports move, reporters count once, it points to its target.

    The target must be an open case that is not itself merged, so merges never form a cycle.
    """
    _require_dispatcher(user)
    if case_id == into_case_id:
        raise invalid("A case cannot be merged into itself.", *INPUT, "intoCase")
    found = await Case.get_or_none(id=into_case_id)
    if found is None:
        raise not_found("case", *INPUT, "intoCase")
    target = found
    if target.status == Status.MERGED:
        raise conflict("That case was itself merged into another; merge into that one.", *INPUT, "intoCase")
    if target.status not in OPEN_STATUSES:
        raise conflict(f"That case is {target.status}; merge only into an open case.", *INPUT, "intoCase")

    async def move_reports(source: Case) -> None:
        # Re-checked inside the transaction: the target may have been merged meanwhile.
        moved = await Case.filter(id=into_case_id, status__in=OPEN_STATUSES).update(updated_at=clock.now())
        if not moved:
            raise conflict("The target case changed meanwhile; reload and try again.", *INPUT, "intoCase")
        await Case.filter(id=source.id).update(merged_into_id=into_case_id)
        await Report.filter(case_id=source.id).update(case_id=into_case_id)
        await _recount(into_case_id)
        await casework.record(target, user, "merged_in", (note or "").strip(), source=source.id)

    given = TransitionInput(merge_into=str(into_case_id), note=note)
    merged = await casework.transition(
        case_id, user, Step(Action.MERGE, expected_version, given), also=move_reports
    )
    # The moved reports' photos follow the target case, on the public map or off it.
    await casework.publish_photos(into_case_id)
    target = await Case.get(id=into_case_id)
    return merged, target


async def split_report(snapshot: Snapshot, user: User, report_id: int, note: str | None) -> tuple[Case, Case]:
    """Take a report that was wrongly grouped out of its case into a new case of its own, routed afresh."""
    _require_dispatcher(user)
    report = await Report.get_or_none(id=report_id)
    if report is None:
        raise not_found("report", *INPUT, "reportId")
    now = clock.now()
    category = snapshot.category(snapshot.category_codes.get(report.category_id, ""))
    if category is None:
        raise conflict(
            "The report's category is no longer active; change the category first.", *INPUT, "reportId"
        )
    point = LatLon(report.latitude, report.longitude)
    decision = route(snapshot, category, point, report.evidence, report.observed_at)
    async with atomic():
        source = await Case.get(id=report.case_id)
        if source.status not in OPEN_STATUSES:
            raise conflict(f"The case is {source.status}; only an open case's reports can be split out.")
        if await Report.filter(case_id=source.id).count() < 2:
            raise conflict("This is the case's only report; there is nothing to split.", *INPUT, "reportId")
        what = NewCase(category, report.category_id, point, report.description)
        new_case = await open_case(what, decision, snapshot, report.reporter_id, now)
        await Report.filter(id=report.id).update(case_id=new_case.id)
        await _recount(source.id)
        await casework.record(
            source, user, "report_split", (note or "").strip(), report=report.id, to=new_case.id
        )
    # The report's photos follow it into its new case (off the map while that one is in triage).
    await casework.publish_photos(new_case.id)
    source = await Case.get(id=source.id)
    return source, new_case


async def change_category(
    snapshot: Snapshot,
    user: User,
    case_id: int,
    category_code: str,
    note: str | None,
) -> Case:
    """Correct a case's category; where the new category belongs to another department, re-route it."""
    _require_dispatcher(user)
    case, _ = await access.case_for(user, case_id, *INPUT, "caseId")
    category = snapshot.category(category_code)
    if category is None:
        raise invalid("No such category.", *INPUT, "categoryCode")
    if case.status not in OPEN_STATUSES:
        raise conflict(f"The case is {case.status}; its category can no longer change.", *INPUT, "caseId")
    new_id = snapshot.category_ids[category.code]
    if new_id == case.category_id:
        return case
    decision = route(snapshot, category, LatLon(case.latitude, case.longitude), {}, clock.now())
    old_code = snapshot.category_codes.get(case.category_id)
    text = (note or "").strip()

    async def recategorize(current: Case) -> None:
        await Case.filter(id=current.id).update(category_id=new_id, updated_at=clock.now())
        await casework.record(current, user, "category_changed", text, old=old_code, new=category.code)

    department = snapshot.department_ids.get(decision.department_code or "")
    if department is not None and department != case.department_id:
        # One transaction: a case that may not move now keeps its category too.
        given = TransitionInput(department_code=decision.department_code, note=decision.reason)
        step = Step(Action.REROUTE, None, given, department_id=department, category_id=new_id)
        moved = await casework.transition(case.id, user, step, also=recategorize)
        return await Case.get(id=moved.id)
    async with atomic():
        await recategorize(case)
    fresh = await Case.get(id=case.id)
    return fresh


async def set_priority(user: User, case_id: int, priority: Priority, note: str | None) -> Case:
    _require_dispatcher(user)
    case, _ = await access.case_for(user, case_id, *INPUT, "caseId")
    if case.priority == priority:
        return case
    async with atomic():
        await Case.filter(id=case.id).update(priority=priority, updated_at=clock.now())
        await casework.record(
            case, user, "priority_changed", (note or "").strip(), old=int(case.priority), new=int(priority)
        )
    fresh = await Case.get(id=case.id)
    return fresh
