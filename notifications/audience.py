"""Who hears what: the people an outbox row concerns, each with the message kind they get.

    case step          resident (each reporter)   department staff            others
    route, reroute     -                           case_queued (new dept)      -
    triage, return     case_returned (return)      -                           dispatchers: case_triage
    accept             case_accepted               -                           -
    resolve            case_resolved               -                           chief of the observation:
                                                                               observation_case_resolved
    confirm/auto_close case_closed                 -                           -
    dispute            case_reopened               case_reopened               -
    assigned           -                           the assignee: case_assigned -
    reminded           -                           case_reminded (催办)        -
    escalated          -                           case_escalated (督办)       -
    patrol_shortfall   -                           -                           the chief

There is no head-of-department role: staff belong to one department and dispatchers to none, so a
reminder goes to the case's assignee (or, unassigned, to all of its department's active staff) and
an escalation (督办) to all of the department's active staff, its head among them. The actor who made
the change never hears of it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from identity.models import Role, User
from kernel.outbox import OutboxEvent
from reports.models import Case, Category, Report, ReportSource
from reports.store import working_calendar

RESIDENT_KINDS = {
    "accept": "case_accepted",
    "return": "case_returned",
    "resolve": "case_resolved",
    "confirm": "case_closed",
    "auto_close": "case_closed",
    "dispute": "case_reopened",
}
QUEUE_ENTRY = ("route", "reroute")
TRIAGE_ENTRY = ("triage", "return")


@dataclass(slots=True)
class Audience:
    """Message kind per recipient (one message per person per change) and the facts texts use."""

    kinds: dict[int, str] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)  # placeholders that are the same in every language
    category: Category | None = None  # its name is filled in the reader's language
    status_key: str | None = None  # a short status text, also in the reader's language
    case_id: int | None = None

    def add(self, user_ids: list[int] | set[int], kind: str) -> None:
        for user_id in user_ids:
            self.kinds.setdefault(user_id, kind)


async def audience_of(event: OutboxEvent) -> Audience:
    if event.subject == "patrol_rule" and event.kind == "patrol_shortfall":
        return _shortfall(event)
    if event.subject == "escalation":
        return _escalation(event)
    if event.subject != "case":
        return Audience()
    return await _case_audience(event)


def _escalation(event: OutboxEvent) -> Audience:
    """上报 tells the chief it was sent to; 交办 tells the sender and that chief (not whoever acted)."""
    data = event.data
    deadline = data.get("deadline")
    due = ""
    if deadline:
        due = datetime.fromisoformat(deadline).astimezone(working_calendar().tz).strftime("%Y-%m-%d %H:%M")
    audience = Audience(
        params={
            "area": data.get("area_code") or "",
            "reference": data.get("case_reference") or "",
            "deadline": due,
        }
    )
    if event.kind == "escalation_reported":
        audience.add([int(data["to_chief"])], "escalation_reported")
    elif event.kind == "escalation_assigned":
        actor = data.get("actor")
        audience.add({int(data[k]) for k in ("from_chief", "to_chief")} - {actor}, "escalation_assigned")
    return audience


def _shortfall(event: OutboxEvent) -> Audience:
    data = event.data
    audience = Audience(
        params={k: data.get(k, "") for k in ("rule", "period", "done", "required", "last_day")}
    )
    audience.add([int(data["chief"])], "patrol_shortfall")
    return audience


async def _case_audience(event: OutboxEvent) -> Audience:
    kind = event.kind
    interesting = {*RESIDENT_KINDS, *QUEUE_ENTRY, *TRIAGE_ENTRY, "assigned", "reminded", "escalated"}
    if kind not in interesting:
        return Audience()
    case = await Case.get_or_none(id=event.subject_id).select_related("category")
    if case is None:
        return Audience()
    actor_id = event.data.get("actor")
    data: dict[str, Any] = event.data.get("details") or {}
    audience = Audience(
        params={"reference": case.reference},
        category=case.category,
        case_id=case.id,
    )
    department_id = event.data.get("department", case.department_id)

    if kind == "resolve":
        # The chief whose observation became this case hears it as such (before the reporter's notice).
        handed_off = Report.filter(case_id=case.id, source=ReportSource.PATROL)
        chiefs = {
            int(origin["chief_id"])
            for (origin,) in await handed_off.values_list("origin")
            if isinstance(origin, dict) and origin.get("chief_id") is not None
        }
        audience.add(chiefs, "observation_case_resolved")
    if kind in RESIDENT_KINDS:
        reporters = {r for (r,) in await Report.filter(case_id=case.id).values_list("reporter_id")}
        audience.add(reporters, RESIDENT_KINDS[kind])
    if kind == "dispute" and department_id is not None:
        audience.add(await _staff(department_id), "case_reopened")
    if kind in QUEUE_ENTRY and department_id is not None:
        audience.add(await _staff(department_id), "case_queued")
    if kind in TRIAGE_ENTRY:
        audience.status_key = "returned" if kind == "return" else "triage"
        dispatchers = User.filter(role=Role.DISPATCHER, is_active=True)
        audience.add({u for (u,) in await dispatchers.values_list("id")}, "case_triage")
    if kind == "assigned" and data.get("assignee") is not None:
        audience.add([int(data["assignee"])], "case_assigned")
    if kind == "reminded" and department_id is not None:
        audience.status_key = str(data.get("deadline", "resolution"))
        if case.assignee_id is not None:
            audience.add([case.assignee_id], "case_reminded")
        else:
            audience.add(await _staff(department_id), "case_reminded")
    if kind == "escalated" and department_id is not None:
        audience.status_key = str(data.get("deadline", "resolution"))
        audience.add(await _staff(department_id), "case_escalated")
    if actor_id is not None:
        audience.kinds.pop(actor_id, None)
    return audience


async def _staff(department_id: int) -> set[int]:
    staff = User.filter(role=Role.STAFF, department_id=department_id, is_active=True)
    return {u for (u,) in await staff.values_list("id")}
