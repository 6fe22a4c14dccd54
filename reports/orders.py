"""Orders (交办): someone with authority outside the dispatchers' hub names the department that must
handle a case, and by when.

The authority is checked by the caller (the river-chief system in `patrols.escalation`: the chief
office or the chief a problem was reported up to); here the case moves as the system would move it,
through the same lifecycle table and transaction as any step, and the order itself is one event in
the case's log (`ordered`, actor = who gave it) with the department and the deadline. The ordered
deadline replaces the SLA policy's resolution deadline for that department; a later re-route, a
dispute or an extension recomputes it from the policy as usual.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from identity.models import User
from kernel.errors import conflict
from reports import casework
from reports.casework import INPUT, Step
from reports.lifecycle import Action, Status, TransitionInput
from reports.models import Case, CaseEvent
from reports.routing import RoutingDecision
from reports.service import Submission, submit_report
from reports.store import Snapshot

ORDERED = "ordered"
# A case in one of these can be sent to a department on an order (the REROUTE sources).
ORDERABLE = (Status.TRIAGE, Status.ROUTED, Status.RETURNED, Status.ACCEPTED, Status.REOPENED)


@dataclass(frozen=True, slots=True)
class Order:
    department_code: str
    due_at: datetime
    ordered_by: User
    note: str = ""
    reason: str = "交办 / assigned on order"


async def open_on_order(snapshot: Snapshot, reporter: User, sub: Submission, order: Order) -> Case:
    """A report by `reporter` whose case goes straight to the ordered department (whatever the routing
    rules say), with the ordered deadline; a retry with the same client id returns the same case. A
    duplicate open case it joins is ordered the same way."""
    department_id = casework.department_of(snapshot, order.department_code)
    decision = RoutingDecision(order.department_code, None, order.reason)
    result = await submit_report(snapshot, reporter, sub, per_hour_limit=None, ordered=decision)
    return await apply_order(result.case.id, department_id, order)


async def apply_order(case_id: int, department_id: int, order: Order) -> Case:
    """Give the case to `department_id` (re-routing it as the system when another holds it) and set
    the ordered deadline; ordering the same again changes nothing. Call inside a transaction."""
    case = await Case.get(id=case_id)
    latest = await _latest_order(case)
    wanted = (department_id, order.due_at.isoformat())
    if latest == wanted and case.department_id == department_id:
        return case
    if case.department_id != department_id or case.status not in (*ORDERABLE, Status.IN_PROGRESS):
        if case.status not in ORDERABLE:
            raise conflict(f"The case is {case.status}; it cannot be assigned now.", *INPUT, "escalationId")
        given = TransitionInput(department_code=order.department_code, note=order.note or order.reason)
        case = await casework.transition(
            case.id, None, Step(Action.REROUTE, None, given, department_id=department_id)
        )
    await Case.filter(id=case.id).update(resolution_due_at=order.due_at)
    case.resolution_due_at = order.due_at
    await casework.record(
        case,
        order.ordered_by,
        ORDERED,
        order.note,
        department=department_id,
        due=order.due_at.isoformat(),
    )
    return case


async def _latest_order(case: Case) -> tuple[int, str] | None:
    event = await CaseEvent.filter(case_id=case.id, kind=ORDERED).order_by("-id").first()
    if event is None:
        return None
    return int(event.data.get("department") or 0), str(event.data.get("due"))
