"""Deadlines at work: reminders (催办) and escalations (督办), the quiet-period close, and extensions (延期).

The periodic pass (`escalate_due_cases`) looks at cases a department is working. Once the deadline
running now (the response deadline while ROUTED, else the resolution deadline) is APPROACHING, it
records one `reminded` event for that due time; once it is OVERDUE, one `escalated` event and the
priority one step up (at most URGENT). `Case.reminded_for` / `escalated_for` hold the due time each
was recorded for, so a new due time (re-route, extension, rework) is reminded and escalated afresh.

Several processes may run the pass at once. Each change is a conditional update (`... WHERE id = ?
AND escalated_for IS DISTINCT FROM due`) plus its event in one transaction: only the process whose
update matched writes the event. On PostgreSQL each batch also claims its rows with
`FOR UPDATE SKIP LOCKED`, so two processes share the work instead of queueing on the same rows.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from tortoise import connections
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.expressions import F, Q

from identity.models import Role, User
from kernel import clock, outbox
from kernel.database import atomic
from kernel.errors import DomainError, conflict, forbidden, invalid, not_found
from reports import access, casework
from reports.calendar import WorkingCalendar
from reports.casework import INPUT, Step
from reports.lifecycle import Action, Status
from reports.models import Case, CaseEvent, Category, DeadlineExtension, ExtensionStatus, Priority
from reports.sla import DeadlineState, SlaPolicy, Span, SpanUnit, state_against
from reports.store import sla_policies, working_calendar

REMINDED = "reminded"
ESCALATED = "escalated"
BATCH_SIZE = 500
# The candidate window assumes approved extensions at most double a span; a longer-extended case is
# reminded a little later than its deadlineState turns APPROACHING.
EXTENSION_ALLOWANCE = 2.0
# Statuses in which a department may ask for more time to resolve (after accepting the case).
EXTENDABLE = (Status.ACCEPTED, Status.IN_PROGRESS, Status.REOPENED)
DISPATCHERS = (Role.DISPATCHER, Role.ADMIN)
MAX_EXTENSION = 365.0  # in the policy's unit; a sanity bound, not a rule

CaseStep = Callable[[BaseDBAsyncClient, Case], Awaitable[CaseEvent | None]]


# --- the deadline running now ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Deadline:
    """The deadline a case is working against now and the clock it runs on."""

    kind: str  # "response" or "resolution"
    due: datetime
    span: Span
    start: datetime
    policy: SlaPolicy
    case: Case

    def state(self, at: datetime, calendar: WorkingCalendar) -> DeadlineState:
        pauses = casework.pauses_of(self.case) if self.kind == "resolution" else []
        return state_against(self.span, self.start, self.due, at, calendar, pauses, self.policy.warn_at)


def running_deadline(case: Case, policy: SlaPolicy | None) -> Deadline | None:
    """None when no deadline runs (not with a department, finished, or no policy)."""
    due = casework.active_due(case)
    if due is None or policy is None or case.dispatched_at is None:
        return None
    if case.status == Status.ROUTED:
        # The response clock starts when the current department got the case (routing or re-route).
        start = case.status_changed_at or case.dispatched_at
        return Deadline("response", due, policy.response, start, policy, case)
    return Deadline("resolution", due, policy.resolution, case.dispatched_at, policy, case)


def deadline_state(case: Case, category: Category, at: datetime) -> DeadlineState | None:
    deadline = running_deadline(case, casework.policy_of(case, category.sla_policy))
    return deadline.state(at, working_calendar()) if deadline else None


# --- the escalation pass -----------------------------------------------------------------------


@dataclass
class SweepResult:
    """What one pass did (in this process; another process's work is not counted)."""

    reminded: int = 0
    escalated: int = 0
    closed: int = 0

    def __str__(self) -> str:
        return f"{self.reminded} reminded, {self.escalated} escalated, {self.closed} closed (quiet period)"


async def sweep_deadlines(now: datetime, quiet_period: timedelta) -> SweepResult:
    """The periodic job: escalation pass, then the quiet-period close."""
    result = await escalate_due_cases(now)
    result.closed = await close_quiet_cases(now, quiet_period)
    return result


@dataclass(frozen=True, slots=True)
class _Watch:
    """One deadline column and the statuses it runs in."""

    kind: str
    due_field: str
    statuses: tuple[Status, ...]

    def span(self, policy: SlaPolicy) -> Span:
        return policy.response if self.kind == "response" else policy.resolution


# What the pass reads of a case (the rest of the row is not needed).
_READ = (
    "id",
    "status",
    "version",
    "priority",
    "category_id",
    "department_id",
    "response_due_at",
    "resolution_due_at",
    "dispatched_at",
    "status_changed_at",
    "sla_pauses",
    "sla_extension",
    "sla_policy",
    "reminded_for",
    "escalated_for",
)

_WATCHES = (
    _Watch("response", "response_due_at", (Status.ROUTED,)),
    _Watch(
        "resolution", "resolution_due_at", tuple(s for s in casework.WORKING_STATUSES if s != Status.ROUTED)
    ),
)


def _where(lookup: str, value: Any) -> Q:
    """`Q(<lookup>=value)` for a lookup built at run time."""
    condition: dict[str, Any] = {lookup: value}
    return Q(**condition)


def _differs(column: str, value: Any) -> Q:
    """`column IS DISTINCT FROM value`, written so both databases understand it."""
    return _where(f"{column}__isnull", True) | _where(f"{column}__lt", value) | _where(f"{column}__gt", value)


def reminder_horizon(span: Span, warn_at: float, now: datetime, calendar: WorkingCalendar) -> datetime:
    """The latest due time a case on this span can have and already be APPROACHING at `now`: remaining
    time at most (1 - warn_at) of the allowed time, the allowed time at most EXTENSION_ALLOWANCE spans."""
    full = span.measure(now, span.due(now, calendar), calendar)
    lead_hours = full / timedelta(hours=1) * EXTENSION_ALLOWANCE * (1 - warn_at)
    working = span.unit in (SpanUnit.WORKING_HOURS, SpanUnit.WORKING_DAYS)
    lead = Span(lead_hours, SpanUnit.WORKING_HOURS if working else SpanUnit.HOURS)
    return lead.due(now, calendar).astimezone(UTC)


async def escalate_due_cases(now: datetime, *, batch_size: int = BATCH_SIZE) -> SweepResult:
    """One pass: remind approaching and escalate overdue cases, each once per due time."""
    now = now.astimezone(UTC)  # SQLite compares stored timestamps as UTC text
    result = SweepResult()
    policies = sla_policies()
    calendar = working_calendar()
    category_policy = dict(await Category.all().values_list("id", "sla_policy"))
    # Cases without a stored policy (none once dispatched; kept correct anyway) run on their category's.
    categories_of: dict[str, list[int]] = defaultdict(list)
    for cid, code in category_policy.items():
        categories_of[code].append(cid)
    for watch in _WATCHES:
        due = watch.due_field
        # Each policy's cases, due soon enough that they may be APPROACHING already.
        horizons = {
            code: reminder_horizon(watch.span(policy), policy.warn_at, now, calendar)
            for code, policy in policies.items()
        }
        if not horizons:
            break
        windows = [Q(sla_policy=code) & _where(f"{due}__lte", h) for code, h in horizons.items()] + [
            Q(sla_policy__isnull=True, category_id__in=categories_of[code]) & _where(f"{due}__lte", h)
            for code, h in horizons.items()
            if code in categories_of
        ]
        # Still to do: a reminder for this due time, or (once overdue) an escalation.
        needs_work = _differs("reminded_for", F(due)) | (
            _where(f"{due}__lte", now) & _differs("escalated_for", F(due))
        )
        candidates = Case.filter(
            Q(*windows, join_type="OR"),
            needs_work,
            status__in=watch.statuses,
            **{f"{due}__lte": max(horizons.values())},  # a bound the index range can use
        )
        # The candidates' ids in one index range read, then bounded batches by primary key. Each batch
        # re-checks what is still to do (another process may have done it meanwhile); the status and
        # the due time are checked again by each case's conditional update.
        ids = [case_id for (case_id,) in await candidates.order_by(due, "id").values_list("id")]
        for start in range(0, len(ids), batch_size):
            chunk = ids[start : start + batch_size]
            batch = Case.filter(needs_work, id__in=chunk).order_by(due, "id").only(*_READ)
            step = partial(_step, watch=watch, category_policy=category_policy, now=now, calendar=calendar)
            for kind in await _run_batch(batch, step):
                setattr(result, kind, getattr(result, kind) + 1)
    return result


async def _run_batch(query: Any, step: CaseStep) -> list[str]:
    """Apply `step` to each row of `query` in one transaction, with the events it calls for; on
    PostgreSQL the rows are claimed with FOR UPDATE SKIP LOCKED (another process's batch is skipped,
    not waited for)."""
    conn = connections.get("default")
    # SQLite: read before the transaction, so it starts with a write and waits for the file lock
    # instead of failing on a snapshot another process has moved past.
    rows: list[Case] | None = None if conn.capabilities.support_for_update else await query
    async with atomic() as tx:
        if rows is None:
            rows = await query.select_for_update(skip_locked=True)
        recorded = [event for case in rows if (event := await step(tx, case)) is not None]
        await casework.append(recorded)
        by_id = {case.id: case for case in rows}
        await outbox.emit(*(casework.announcement(by_id[event.case_id], event) for event in recorded))
        return [event.kind for event in recorded]


def _sql(conn: BaseDBAsyncClient, text: str) -> str:
    """`text` with its `?` placeholders in the connection's dialect."""
    if conn.capabilities.dialect != "postgres":
        return text
    parts = text.split("?")
    return "".join(f"{part}${i}" for i, part in enumerate(parts[:-1], 1)) + parts[-1]


async def _step(
    conn: BaseDBAsyncClient,
    case: Case,
    *,
    watch: _Watch,
    category_policy: dict[int, str],
    now: datetime,
    calendar: WorkingCalendar,
) -> CaseEvent | None:
    """The conditional update this case's deadline calls for, if any, and the event to record when the
    update matched (another process may have done it first)."""
    deadline = running_deadline(case, casework.policy_of(case, category_policy.get(case.category_id, "")))
    if deadline is None:
        return None
    state = deadline.state(now, calendar)
    due, column = deadline.due, watch.due_field
    if state is DeadlineState.OVERDUE and case.escalated_for != due:
        raised = Priority(min(int(case.priority) + 1, int(Priority.URGENT)))
        # The priority read is part of the condition: a dispatcher's change meanwhile wins, and the
        # next pass escalates from it.
        sql = (
            "UPDATE cases SET escalated_for = ?, reminded_for = ?, priority = ?, updated_at = ? "
            f"WHERE id = ? AND status = ? AND {column} = ? AND priority = ? "
            "AND (escalated_for IS NULL OR escalated_for <> ?)"
        )
        params = [due, due, int(raised), now, case.id, case.status.value, due, int(case.priority), due]
        updated, _ = await conn.execute_query(_sql(conn, sql), params)
        if not updated:
            return None
        old = int(case.priority)
        case.escalated_for = case.reminded_for = due
        case.priority, case.updated_at = raised, now
        return casework.new_event(
            case,
            None,
            ESCALATED,
            at=now,
            deadline=deadline.kind,
            due=due.isoformat(),
            old=old,
            new=int(raised),
        )
    if state is DeadlineState.APPROACHING and case.reminded_for != due:
        sql = (
            "UPDATE cases SET reminded_for = ?, updated_at = ? "
            f"WHERE id = ? AND status = ? AND {column} = ? AND (reminded_for IS NULL OR reminded_for <> ?)"
        )
        updated, _ = await conn.execute_query(
            _sql(conn, sql), [due, now, case.id, case.status.value, due, due]
        )
        if not updated:
            return None
        case.reminded_for, case.updated_at = due, now
        return casework.new_event(case, None, REMINDED, at=now, deadline=deadline.kind, due=due.isoformat())
    return None


# --- the quiet-period close ----------------------------------------------------------------------


async def close_quiet_cases(now: datetime, quiet_period: timedelta, *, batch_size: int = BATCH_SIZE) -> int:
    """Close (AUTO_CLOSE) cases awaiting their residents' answer for `quiet_period` without one.

    A RESOLVED case whose category asks for verification waits for the check instead. Each close is a
    lifecycle step with the version the pass read: a case that changed meanwhile, or that another
    process closed first, is left alone. Returns how many were closed as this call saw it (a case
    another process closed a moment before from the same version reads as a retry and is counted too).
    """
    cutoff = (now - quiet_period).astimezone(UTC)  # SQLite compares stored timestamps as UTC text
    awaiting = Q(status=Status.VERIFIED) | Q(status=Status.RESOLVED, category__verification_required=False)
    closed = 0
    after: tuple[datetime, int] | None = None
    while True:
        query = Case.filter(awaiting, status_changed_at__lte=cutoff)
        if after is not None:
            query = query.filter(
                Q(status_changed_at__gt=after[0]) | Q(status_changed_at=after[0], id__gt=after[1])
            )
        rows = (
            await query.order_by("status_changed_at", "id")
            .limit(batch_size)
            .values_list("id", "version", "status_changed_at")
        )
        for case_id, version, _ in rows:
            step = Step(Action.AUTO_CLOSE, expected_version=version)
            try:
                case = await casework.transition(case_id, None, step)
            except DomainError:
                continue  # changed meanwhile (a resident answered, another process closed it)
            closed += case.status == Status.CLOSED
        if len(rows) < batch_size:
            return closed
        after = (rows[-1][2], rows[-1][0])


# --- extensions ----------------------------------------------------------------------------------


async def request_extension(
    user: User, case_id: int, amount: float, reason: str | None
) -> tuple[DeadlineExtension, Case]:
    """The case's department asks for `amount` more (in the unit of its resolution span).

    One pending request per case; sending the same request again returns it (a retry).
    """
    case, _ = await access.case_for(user, case_id, *INPUT, "caseId", need_reporter=False)
    if not (
        user.role is Role.STAFF
        and user.department_id is not None
        and user.department_id == case.department_id
    ):
        raise forbidden("Only the staff of the case's department may ask for more time.")
    if case.status not in EXTENDABLE:
        raise conflict(
            f"The case is {case.status}; more time can be asked while it is worked.", *INPUT, "caseId"
        )
    text = casework.check_text(reason, "reason", required=True)
    policy = await _policy(case)
    if policy is None:
        raise conflict("No deadline runs for this case.", *INPUT, "caseId")
    _check_amount(amount, policy.resolution.unit)
    now = clock.now()
    async with atomic():
        # Touching the case first serialises concurrent requests for it (row lock / SQLite write lock).
        await Case.filter(id=case.id).update(updated_at=now)
        case.updated_at = now
        pending = await DeadlineExtension.get_or_none(case_id=case.id, status=ExtensionStatus.PENDING)
        if pending is not None:
            if (pending.requested_by_id, pending.amount, pending.reason) == (user.id, amount, text):
                return pending, case
            raise conflict("A request for more time is already waiting for a decision.", *INPUT, "caseId")
        extension = await DeadlineExtension.create(
            case_id=case.id, requested_by_id=user.id, amount=amount, reason=text, created_at=now
        )
        await casework.record(
            case,
            user,
            "extension_requested",
            text,
            at=now,
            extension=extension.id,
            amount=amount,
            unit=policy.resolution.unit.value,
        )
    return extension, case


def _check_amount(amount: float, unit: SpanUnit) -> None:
    if not math.isfinite(amount) or amount <= 0:
        raise invalid("Ask for a positive amount of time.", *INPUT, "amount")
    if amount > MAX_EXTENSION:
        raise invalid(f"At most {MAX_EXTENSION:g} {unit.value}.", *INPUT, "amount")
    if unit is SpanUnit.WORKING_DAYS and not float(amount).is_integer():
        raise invalid("This case's deadline counts whole working days.", *INPUT, "amount")


async def decide_extension(
    user: User, extension_id: int, approve: bool, note: str | None
) -> tuple[DeadlineExtension, Case]:
    """A dispatcher approves (the resolution deadline moves) or declines a pending request.

    Deciding again is CONFLICT, unless it is the same decision by the same person (a retry).
    """
    extension = await DeadlineExtension.get_or_none(id=extension_id)
    if extension is None:
        raise not_found("extension", *INPUT, "extensionId")
    try:
        case, _ = await access.case_for(user, extension.case_id, need_reporter=False)
    except DomainError:
        raise not_found("extension", *INPUT, "extensionId") from None
    if user.role not in DISPATCHERS:
        raise forbidden("Only dispatchers decide on requests for more time.")
    text = casework.check_text(note, "note")
    status = ExtensionStatus.APPROVED if approve else ExtensionStatus.DECLINED
    if extension.status != ExtensionStatus.PENDING:
        return _retried(extension, user, status, text), case
    if approve and case.status not in EXTENDABLE:
        raise conflict(f"The case is {case.status} now; decline the request instead.", *INPUT, "approve")
    now = clock.now()
    async with atomic():
        decided = await DeadlineExtension.filter(id=extension.id, status=ExtensionStatus.PENDING).update(
            status=status, decided_by_id=user.id, decision_note=text, decided_at=now
        )
        if not decided:
            # Another decision won the race: this one is a retry of it or a conflict.
            return _retried(await DeadlineExtension.get(id=extension.id), user, status, text), case
        data: dict[str, Any] = {"extension": extension.id, "amount": extension.amount}
        if approve:
            data.update(await _extend(case, extension.amount, now))
        kind = "extension_approved" if approve else "extension_declined"
        await casework.record(case, user, kind, text, at=now, **data)
    extension.status, extension.decided_by_id, extension.decision_note, extension.decided_at = (
        status,
        user.id,
        text,
        now,
    )
    return extension, case


async def _extend(case: Case, amount: float, now: datetime) -> dict[str, Any]:
    """Move the resolution deadline by `amount`; the event data says from when to when."""
    policy = await _policy(case)
    before, granted = case.resolution_due_at, case.sla_extension
    case.sla_extension = granted + amount
    case.resolution_due_at = casework.resolution_due(case, policy)
    # A step that moved the case meanwhile (version) or another extension would make this stale.
    updated = await Case.filter(id=case.id, version=case.version, sla_extension=granted).update(
        sla_extension=case.sla_extension, resolution_due_at=case.resolution_due_at, updated_at=now
    )
    if not updated:
        raise conflict("The case changed meanwhile; reload it and decide again.", *INPUT, "extensionId")
    case.updated_at = now
    return {
        "old_due": before.isoformat() if before else None,
        "due": case.resolution_due_at.isoformat() if case.resolution_due_at else None,
    }


async def _policy(case: Case) -> SlaPolicy | None:
    ((category_policy,),) = await Category.filter(id=case.category_id).values_list("sla_policy")
    return casework.policy_of(case, category_policy)


def _retried(
    extension: DeadlineExtension, user: User, status: ExtensionStatus, note: str
) -> DeadlineExtension:
    if (extension.status, extension.decided_by_id, extension.decision_note) == (status, user.id, note):
        return extension
    raise conflict(f"This request was already decided: {extension.status}.", *INPUT, "extensionId")
