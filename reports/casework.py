"""Staff and residents working a case: every lifecycle step is one transaction.

A step is checked by `reports.lifecycle` (who may, from which status, with which inputs), then written as
a conditional update on the case's version plus one appended event. Two people acting at once: the first
update matches the version, the second matches nothing and gets CONFLICT with the current state. After
the transaction the change is announced in the outbox, which the server relays to live subscribers.

Deadlines follow the case's SLA policy (`reports.sla`), chosen from its category's policy, its priority
and the receiving department's region when a department first gets the case (and again when its category
is corrected), and stored on it: a later priority change or a plain re-route does not change it. Both
clocks start when a department is first given the case; the resolution clock stands still while the case
sits in a pausing status (RETURNED by default) and moves by approved extensions. A re-route gives the new
department a fresh response clock.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from identity.models import User
from kernel import clock, outbox
from kernel.database import atomic
from kernel.errors import DomainError, conflict, invalid
from media.service import claim_photos, set_public
from reports import access, lifecycle, rollups
from reports.calendar import Interval
from reports.lifecycle import Action, Status, TransitionInput
from reports.models import Case, CaseEvent, Category, Department, Priority
from reports.sla import SlaPolicy, Span, choose_policy
from reports.store import Snapshot, sla_policies, working_calendar

INPUT = ("input",)
TRIAGE_CHANNEL = "department:triage"
# Statuses in which a department works the case and its deadlines are watched.
WORKING_STATUSES = (Status.ROUTED, Status.ACCEPTED, Status.IN_PROGRESS, Status.REOPENED)
# Where a resident's answer is awaited after resolution (confirm, dispute or the quiet period).
AWAITING_FEEDBACK = (Status.RESOLVED, Status.VERIFIED)

# Applied in the transaction after the case row is updated, e.g. moving a merged case's reports.
AlsoInTransaction = Callable[[Case], Awaitable[None]]


def case_channel(case_id: int) -> str:
    return f"case:{case_id}"


def department_channel(department_id: int | None) -> str:
    return TRIAGE_CHANNEL if department_id is None else f"department:{department_id}"


def actor_of(user: User | None, case: Case, is_reporter: bool) -> lifecycle.Actor:
    if user is None:
        return lifecycle.SYSTEM
    return lifecycle.Actor(
        role=user.role,
        is_reporter=is_reporter,
        in_case_department=access.in_case_department(user, case),
    )


# --- deadlines -----------------------------------------------------------------------------------


def policy_of(case: Case, category_policy: str) -> SlaPolicy | None:
    """The policy the case's deadlines run on: the one stored at dispatch, else its category's."""
    return sla_policies().get(case.sla_policy or category_policy)


async def dispatch_policy(category_policy: str, priority: Priority, department_id: int) -> str:
    """The policy code for a case given to `department_id` now (see `reports.sla.choose_policy`)."""
    policy = sla_policies().get(category_policy)
    region = None
    if policy is not None and any(v.region is not None for v in policy.variants):
        # Only regional variants need the department's region: one small read, not on every dispatch.
        codes = await Department.filter(id=department_id).values_list("jurisdiction__code")
        region = codes[0][0] if codes else None
    return choose_policy(sla_policies(), category_policy, priority, region)


def pauses_of(case: Case) -> list[Interval]:
    return [(datetime.fromisoformat(a), datetime.fromisoformat(b)) for a, b in case.sla_pauses]


def resolution_due(case: Case, policy: SlaPolicy | None) -> datetime | None:
    """From dispatch, skipping the pauses, plus approved extensions."""
    if policy is None or case.dispatched_at is None:
        return None
    calendar = working_calendar()
    due = policy.resolution.due(case.dispatched_at, calendar, pauses_of(case))
    if case.sla_extension > 0:
        due = Span(case.sla_extension, policy.resolution.unit).due(due, calendar)
    return due


def active_due(case: Case) -> datetime | None:
    """The deadline the department is working against now: response until accepted, then resolution."""
    if case.status == Status.ROUTED:
        return case.response_due_at
    if case.status in WORKING_STATUSES:
        return case.resolution_due_at
    return None


def _deadline_changes(
    case: Case, action: Action, policy: SlaPolicy | None, now: datetime, chosen: str | None = None
) -> dict[str, Any]:
    """The SLA fields a step changes: pauses end, clocks start or restart. `policy` is the one the case
    ran on until now; `chosen` the one a first dispatch or a category correction picked."""
    changes: dict[str, Any] = {}
    if policy is not None and case.status in policy.pause_in_statuses and case.status_changed_at is not None:
        case.sla_pauses = [*case.sla_pauses, [case.status_changed_at.isoformat(), now.isoformat()]]
        changes["sla_pauses"] = case.sla_pauses
    if action is Action.REROUTE and chosen is not None:
        if policy is not None and chosen != policy.code and case.sla_extension:
            # Granted in the old policy's unit against its time; the new policy's time replaces both.
            case.sla_extension = changes["sla_extension"] = 0.0
        case.sla_policy = changes["sla_policy"] = chosen
        policy = sla_policies().get(chosen)
    if policy is None:
        return changes
    if action is Action.REROUTE:
        if case.dispatched_at is None:
            case.dispatched_at = now
            changes["dispatched_at"] = now
        changes["response_due_at"] = policy.response.due(now, working_calendar())
        changes["responded_at"] = None
    if action is Action.DISPUTE:
        # Rework (重办) gets the full resolution time again, counted from the dispute.
        case.dispatched_at, case.sla_pauses, case.sla_extension = now, [], 0.0
        changes.update(dispatched_at=now, sla_pauses=[], sla_extension=0.0)
    if changes:
        changes["resolution_due_at"] = resolution_due(case, policy)
    return changes


# --- transitions ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Step:
    """One request to move a case: the action, the version the caller saw, and its inputs."""

    action: Action
    expected_version: int | None = None
    given: TransitionInput = TransitionInput()
    department_id: int | None = None  # for REROUTE: the receiving department
    category_id: int | None = None  # for a REROUTE that corrects the category: the new one


def _effects(case: Case, step: Step, now: datetime) -> tuple[dict[str, Any], dict[str, Any]]:
    """The case fields a step sets and the data its event records."""
    given = step.given
    data: dict[str, Any] = {}
    changes: dict[str, Any] = {}
    match step.action:
        case Action.ACCEPT | Action.RETURN:
            changes["responded_at"] = now
            data["due"] = _iso(case.response_due_at)
            if step.action is Action.RETURN:
                # Back to the dispatchers' triage queue; the department no longer holds it.
                changes.update(department_id=None, assignee_id=None)
        case Action.RESOLVE:
            photos = list(given.photo_ids)
            changes.update(
                resolved_at=now, resolution_note=(given.note or "").strip(), resolution_photo_ids=photos
            )
            # When the resolution clock started, so statistics can tell the handling time from the log.
            data.update(due=_iso(case.resolution_due_at), dispatched=_iso(case.dispatched_at), photos=photos)
        case Action.VERIFY_PASS | Action.VERIFY_FAIL:
            data["photos"] = list(given.photo_ids)
            if step.action is Action.VERIFY_FAIL:
                changes["rework_count"] = case.rework_count + 1
        case Action.DISPUTE:
            changes.update(rework_count=case.rework_count + 1, closed_at=None)
        case Action.CONFIRM | Action.AUTO_CLOSE | Action.REJECT:
            changes["closed_at"] = now
            if step.action is Action.REJECT:
                changes["public"] = False  # spam and invalid reports leave the map
        case Action.REROUTE:
            changes.update(department_id=step.department_id, assignee_id=None, public=True)
            data.update(department=step.department_id, previous_department=case.department_id)
    return changes, data


def _timeliness(case: Case, action: Action, now: datetime) -> dict[str, Any]:
    """The event's statistics columns: made by its due time, and for a resolution its handling time."""
    due = {Action.ACCEPT: case.response_due_at, Action.RETURN: case.response_due_at}.get(action)
    seconds = None
    if action is Action.RESOLVE:
        due = case.resolution_due_at
        if case.dispatched_at is not None:
            seconds = (now - case.dispatched_at).total_seconds()
    return {"on_time": None if due is None else now <= due, "handling_seconds": seconds}


async def _priors(case_id: int, action: Action, department_id: int | None) -> dict[str, datetime | None]:
    """When the case last had an event of the same statistics figure: anywhere, and in `department_id`."""
    kinds = lifecycle.SAME_FIGURE.get(action)
    if kinds is None:
        return {}
    earlier = (
        await CaseEvent.filter(case_id=case_id, kind__in=[k.value for k in kinds])
        .order_by("-id")
        .values_list("department_id", "created_at")
    )
    here = [at for department, at in earlier if department == department_id]
    return {
        "prior_at": earlier[0][1] if earlier else None,
        "prior_in_department_at": here[0] if here else None,
    }


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


async def transition(
    case_id: int,
    user: User | None,
    step: Step,
    *,
    also: AlsoInTransaction | None = None,
) -> Case:
    """Apply one lifecycle step as `user` (None: the system). Raises a DomainError saying why not."""
    now = clock.now()
    # Only residents' steps (confirm, dispute) ask whether the caller reported the case.
    need_reporter = lifecycle.Party.REPORTER in lifecycle.TRANSITIONS[step.action].who
    case, reporter = await access.case_for(user, case_id, *INPUT, "caseId", need_reporter=need_reporter)
    if await _already_done(case, user, step):
        return case
    category = await Category.get(id=case.category_id)
    to = lifecycle.check_transition(
        step.action, case.status, actor_of(user, case, reporter), step.given, category
    )
    if step.expected_version is not None and step.expected_version != case.version:
        raise _stale(case)
    changes, data = _effects(case, step, now)
    chosen = None
    if (
        step.action is Action.REROUTE
        and step.department_id is not None
        and (case.dispatched_at is None or step.category_id is not None)
    ):
        # Chosen when a department first gets the case, and again when a correction changes its
        # category. A plain re-route keeps it: the escalation pass may have raised the priority
        # meanwhile, and a missed deadline must not come back as a shorter one.
        named = category if step.category_id is None else await Category.get(id=step.category_id)
        chosen = await dispatch_policy(named.sla_policy, case.priority, step.department_id)
    changes.update(_deadline_changes(case, step.action, policy_of(case, category.sla_policy), now, chosen))
    before_department = case.department_id
    department = step.department_id if step.action is Action.REROUTE else before_department
    async with atomic():
        updated = await Case.filter(id=case.id, version=case.version).update(
            status=to, version=case.version + 1, status_changed_at=now, updated_at=now, **changes
        )
        if not updated:
            raise _stale(await Case.get(id=case.id))
        if step.given.photo_ids and user is not None:
            await claim_photos(user.id, step.given.photo_ids, field=(*INPUT, "photoIds"))
        statistics: dict[str, Any] = {
            **_timeliness(case, step.action, now),
            **await _priors(case.id, step.action, department),
        }
        event = CaseEvent(
            case_id=case.id,
            actor_id=user.id if user else None,
            kind=step.action.value,
            department_id=department,
            category_id=step.category_id or case.category_id,
            **statistics,
            from_status=case.status,
            to_status=to,
            note=(step.given.reason or step.given.note or "").strip(),
            data=data,
            created_at=now,
        )
        # The version matched, so nobody else moved the case: what we wrote is what it is now.
        for name, value in (
            ("status", to),
            ("version", case.version + 1),
            ("status_changed_at", now),
            ("updated_at", now),
            *changes.items(),
        ):
            setattr(case, name, value)
        await log(case, event, also_to=(before_department,))
        if also is not None:
            await also(case)
            case = await Case.get(id=case.id)
    if step.action in PUBLICITY_ACTIONS:
        await publish_photos(case.id)
    return case


async def _already_done(case: Case, user: User | None, step: Step) -> bool:
    """A phone that lost the answer sends the same step again: if that very step (same actor, same
    action, made from the version the caller saw) is the case's latest, the retry gets the result."""
    if step.expected_version is None or case.version != step.expected_version + 1:
        return False
    last = await CaseEvent.filter(case_id=case.id, to_status__not_isnull=True).order_by("-id").first()
    actor_id = user.id if user else None
    return last is not None and last.kind == step.action.value and last.actor_id == actor_id


def _stale(current: Case) -> DomainError:
    return conflict(
        f"The case changed meanwhile: it is now {current.status} (version {current.version}). "
        "Reload it and try again.",
        *INPUT,
        "expectedVersion",
    )


# The steps that put a case on the public map, take it off, or add photos to it.
PUBLICITY_ACTIONS = frozenset({Action.REROUTE, Action.REJECT, Action.RESOLVE})


async def publish_photos(*case_ids: int) -> None:
    """Photos follow their case onto and off the public map (the rule: access.case_photo_publicity)."""
    shown, hidden = await access.case_photo_publicity(case_ids)
    await set_public(hidden, public=False)
    await set_public(shown)


def announcement(case: Case, event: CaseEvent, also_to: tuple[int | None, ...] = ()) -> outbox.OutboxEvent:
    """The outbox row for one of the case's events: heard on the case's channel and in the queue it
    is in (and in `also_to`, the queue it just left)."""
    departments = {case.department_id, *also_to}
    channels = [case_channel(case.id), *sorted(department_channel(d) for d in departments)]
    # Who acted and what the event carried (an assignee, a deadline): listeners need not read the log back.
    return outbox.change(
        event.kind,
        "case",
        case.id,
        channels,
        event.created_at,
        department=case.department_id,
        actor=event.actor_id,
        details=event.data or {},
    )


async def append(events: list[CaseEvent]) -> None:
    """Write `events` to the case event log with the statistics' roll-ups they change, in the caller's
    transaction: the one place case events are written, so no path can leave the roll-ups behind."""
    await CaseEvent.bulk_create(events)
    await rollups.add(events)


async def log(case: Case, *events: CaseEvent, also_to: tuple[int | None, ...] = ()) -> None:
    """Append `events` to the case's log and announce them, in the caller's transaction."""
    await append(list(events))
    await outbox.emit(*(announcement(case, event, also_to) for event in events))


def new_event(
    case: Case, user: User | None, kind: str, note: str = "", *, at: datetime | None = None, **data: Any
) -> CaseEvent:
    """An unsaved event that is not a lifecycle step (assignment, priority, reminder, rating...); `at`
    for a job that works as of a given moment. Jobs insert many at once."""
    return CaseEvent(
        case_id=case.id,
        actor_id=user.id if user else None,
        kind=kind,
        department_id=case.department_id,
        category_id=case.category_id,
        note=note,
        data=data,
        created_at=at or clock.now(),
    )


async def record(
    case: Case, user: User | None, kind: str, note: str = "", *, at: datetime | None = None, **data: Any
) -> None:
    await log(case, new_event(case, user, kind, note, at=at, **data))


def department_of(snapshot: Snapshot, code: str | None) -> int:
    if not code or code not in snapshot.department_ids:
        raise invalid("No such department.", *INPUT, "departmentCode")
    return snapshot.department_ids[code]


def check_text(value: str | None, name: str, *, required: bool = False) -> str:
    text = (value or "").strip()
    if required and not text:
        raise invalid("Required.", *INPUT, name)
    if len(text) > lifecycle.MAX_TEXT:
        raise invalid(f"At most {lifecycle.MAX_TEXT} characters.", *INPUT, name)
    return text
