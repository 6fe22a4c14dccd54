"""The case state machine, as one table: who may do what, from which status, needing which inputs.

    SUBMITTED -> ROUTED (a rule matched) | TRIAGE (none did) -> ACCEPTED | RETURNED (退单, with reason)
    -> IN_PROGRESS -> RESOLVED (note, after-photos) -> [VERIFIED (核查)] -> CLOSED | REOPENED
    plus REJECTED (reason) and MERGED (into another case).

`check_transition` answers one request; `fold` replays the append-only event log. The checks run
in the order permission, state, inputs, so a caller who may not act learns nothing about the case.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from identity.models import Role
from kernel.errors import DomainError, DomainErrors, conflict, forbidden, invalid

INPUT: tuple[str, ...] = ("input",)
MAX_TEXT = 2000


class Status(enum.StrEnum):
    SUBMITTED = "SUBMITTED"
    ROUTED = "ROUTED"
    TRIAGE = "TRIAGE"
    ACCEPTED = "ACCEPTED"
    RETURNED = "RETURNED"
    IN_PROGRESS = "IN_PROGRESS"
    RESOLVED = "RESOLVED"
    VERIFIED = "VERIFIED"
    CLOSED = "CLOSED"
    REOPENED = "REOPENED"
    REJECTED = "REJECTED"
    MERGED = "MERGED"


class Action(enum.StrEnum):
    SUBMIT = "submit"
    ROUTE = "route"
    TRIAGE = "triage"
    REROUTE = "reroute"
    ACCEPT = "accept"
    RETURN = "return"
    START = "start"
    RESOLVE = "resolve"
    VERIFY_PASS = "verify_pass"
    VERIFY_FAIL = "verify_fail"
    CONFIRM = "confirm"
    DISPUTE = "dispute"
    AUTO_CLOSE = "auto_close"
    REJECT = "reject"
    MERGE = "merge"


# The statistics' distinct-case figures and the event kinds each one counts (reports.statistics); an
# event records when its case last had an event of the same figure (CaseEvent.prior_at).
CASE_COUNTS: tuple[tuple[str, tuple[Action, ...]], ...] = (
    ("received", (Action.ROUTE, Action.REROUTE)),
    ("accepted", (Action.ACCEPT,)),
    ("returned", (Action.RETURN,)),
    ("resolved", (Action.RESOLVE,)),
    ("closed", (Action.CONFIRM, Action.AUTO_CLOSE)),
    ("reopened", (Action.DISPUTE,)),
)
SAME_FIGURE = {kind: kinds for _, kinds in CASE_COUNTS for kind in kinds}


class Party(enum.StrEnum):
    """Who someone is *for this case*: a role alone is not enough (staff of another department)."""

    REPORTER = "REPORTER"
    CASE_STAFF = "CASE_STAFF"
    DISPATCHER = "DISPATCHER"
    ADMIN = "ADMIN"
    SYSTEM = "SYSTEM"


class Need(enum.StrEnum):
    REASON = "reason"
    NOTE = "note"
    AFTER_PHOTOS = "after_photos"  # only where the category asks for them
    CHECK_PHOTO = "check_photo"  # the inspector's own photo of the site (核查)
    DEPARTMENT = "department"
    MERGE_TARGET = "merge_target"


# The input field each need is read from, for error paths.
NEED_FIELDS = {
    Need.REASON: "reason",
    Need.NOTE: "note",
    Need.AFTER_PHOTOS: "photoIds",
    Need.CHECK_PHOTO: "photoIds",
    Need.DEPARTMENT: "departmentCode",
    Need.MERGE_TARGET: "intoCase",
}


@dataclass(frozen=True, slots=True)
class Actor:
    role: Role | None  # an account's role; None for the system itself (routing, timers, jobs)
    # The caller knows the case, so it states the relation; this module stays free of storage.
    is_reporter: bool = False
    in_case_department: bool = False

    def parties(self) -> frozenset[Party]:
        if self.role is None:
            return frozenset({Party.SYSTEM})
        found: set[Party] = set()
        if self.is_reporter:
            found.add(Party.REPORTER)
        if self.role is Role.STAFF and self.in_case_department:
            found.add(Party.CASE_STAFF)
        if self.role in (Role.DISPATCHER, Role.ADMIN):
            found.add(Party(self.role.value))
        return frozenset(found)


SYSTEM = Actor(None)


class CasePolicy(Protocol):
    """What a category adds to the rules; `reports.categories.Category` fits."""

    @property
    def after_photos_required(self) -> bool: ...
    @property
    def verification_required(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class TransitionInput:
    reason: str | None = None
    note: str | None = None
    photo_ids: Sequence[int] = ()
    department_code: str | None = None
    merge_into: str | None = None


@dataclass(frozen=True, slots=True)
class Transition:
    to: Status
    sources: frozenset[Status]
    who: frozenset[Party]
    needs: frozenset[Need] = frozenset()
    # Sources allowed only when the category needs no independent verification (核查).
    sources_if_unverified: frozenset[Status] = frozenset()


def _t(
    to: Status,
    sources: Iterable[Status],
    who: Iterable[Party],
    needs: Iterable[Need] = (),
    sources_if_unverified: Iterable[Status] = (),
) -> Transition:
    return Transition(
        to, frozenset(sources), frozenset(who), frozenset(needs), frozenset(sources_if_unverified)
    )


S, P, N = Status, Party, Need
_DISPATCH = (P.DISPATCHER, P.ADMIN)
_OPEN = (S.SUBMITTED, S.TRIAGE, S.ROUTED, S.RETURNED, S.ACCEPTED, S.IN_PROGRESS, S.REOPENED)

# fmt: off
TRANSITIONS: dict[Action, Transition] = {
    Action.SUBMIT:      _t(S.SUBMITTED,   [],                                  [P.REPORTER, P.SYSTEM]),
    Action.ROUTE:       _t(S.ROUTED,      [S.SUBMITTED],                       [P.SYSTEM], [N.DEPARTMENT]),
    Action.TRIAGE:      _t(S.TRIAGE,      [S.SUBMITTED],                       [P.SYSTEM]),
    # The system re-routes on an order (交办) its caller checked: reports.orders.
    Action.REROUTE:     _t(S.ROUTED,      [S.TRIAGE, S.ROUTED, S.RETURNED, S.ACCEPTED, S.REOPENED],
                                                                               [*_DISPATCH, P.SYSTEM],
                                                                               [N.DEPARTMENT]),
    Action.ACCEPT:      _t(S.ACCEPTED,    [S.ROUTED],                          [P.CASE_STAFF]),
    Action.RETURN:      _t(S.RETURNED,    [S.ROUTED, S.ACCEPTED],              [P.CASE_STAFF], [N.REASON]),
    Action.START:       _t(S.IN_PROGRESS, [S.ACCEPTED, S.REOPENED],            [P.CASE_STAFF]),
    Action.RESOLVE:     _t(S.RESOLVED,    [S.IN_PROGRESS],                     [P.CASE_STAFF],
                                                                               [N.NOTE, N.AFTER_PHOTOS]),
    Action.VERIFY_PASS: _t(S.VERIFIED,    [S.RESOLVED],                        _DISPATCH, [N.CHECK_PHOTO]),
    Action.VERIFY_FAIL: _t(S.IN_PROGRESS, [S.RESOLVED],                        _DISPATCH,
                                                                               [N.REASON, N.CHECK_PHOTO]),
    Action.CONFIRM:     _t(S.CLOSED,      [S.VERIFIED],                        [P.REPORTER],
                           sources_if_unverified=[S.RESOLVED]),
    Action.DISPUTE:     _t(S.REOPENED,    [S.RESOLVED, S.VERIFIED],            [P.REPORTER], [N.REASON]),
    Action.AUTO_CLOSE:  _t(S.CLOSED,      [S.VERIFIED],                        [P.SYSTEM],
                           sources_if_unverified=[S.RESOLVED]),
    Action.REJECT:      _t(S.REJECTED,    [S.SUBMITTED, S.TRIAGE, S.ROUTED, S.RETURNED],
                                                                               _DISPATCH, [N.REASON]),
    Action.MERGE:       _t(S.MERGED,      _OPEN,                               [*_DISPATCH, P.SYSTEM],
                                                                               [N.MERGE_TARGET]),
}
# fmt: on

_VERBS = {
    Action.VERIFY_PASS: "verify",
    Action.VERIFY_FAIL: "send back for rework",
    Action.AUTO_CLOSE: "close",
}
_MISSING = {
    Need.REASON: "a reason is required",
    Need.NOTE: "a resolution note is required",
    Need.AFTER_PHOTOS: "after-photos are required for this category",
    Need.CHECK_PHOTO: "a photo of the check is required",
    Need.DEPARTMENT: "a department is required",
    Need.MERGE_TARGET: "the case to merge into is required",
}


def check_transition(
    action: Action | str,
    status: Status | None,
    actor: Actor,
    given: TransitionInput = TransitionInput(),
    category: CasePolicy | None = None,
) -> Status:
    """The status `action` leads to, or a `DomainError` saying why not.

    `status` is None for a case not yet created. Without a `category` nothing category-specific is
    demanded (no after-photos, no verification step).
    """
    act = _action(action)
    rule = TRANSITIONS[act]
    if not rule.who & actor.parties():
        raise forbidden(f"You may not {_verb(act)} this case.")
    verified_needed = category is not None and category.verification_required
    if status not in _sources(rule, verified_needed):
        if status is None:
            raise conflict(f"cannot {_verb(act)} a case that does not exist")
        if status in rule.sources_if_unverified:
            raise conflict(f"cannot {_verb(act)} a case that is {status}: it must be verified first")
        raise conflict(f"cannot {_verb(act)} a case that is {status}")
    _check_inputs(rule, given, category)
    return rule.to


def allowed_actions(status: Status | None, actor: Actor, category: CasePolicy | None = None) -> list[Action]:
    """What this actor could do now (inputs aside): the buttons a client shows."""
    verified_needed = category is not None and category.verification_required
    return [
        act
        for act, rule in TRANSITIONS.items()
        if rule.who & actor.parties() and status in _sources(rule, verified_needed)
    ]


class HasAction(Protocol):
    @property
    def action(self) -> str: ...


def fold(events: Iterable[HasAction]) -> tuple[Status, int]:
    """Replay the event log: the current status and the version (number of events).

    Permissions were checked when each event was written; here only the order is checked, so a
    corrupt log is noticed instead of silently yielding a wrong status.
    """
    status: Status | None = None
    version = 0
    for event in events:
        act = _action(event.action)
        rule = TRANSITIONS[act]
        if status not in _sources(rule, verified_needed=False):
            raise ValueError(f"event {version + 1} ({act}) cannot follow status {status}")
        status, version = rule.to, version + 1
    if status is None:
        raise ValueError("an event log starts with a submit event")
    return status, version


def _sources(rule: Transition, verified_needed: bool) -> frozenset[Status | None]:
    if not rule.sources and not rule.sources_if_unverified:
        return frozenset({None})
    return rule.sources if verified_needed else rule.sources | rule.sources_if_unverified


def _action(action: Action | str) -> Action:
    try:
        return Action(action)
    except ValueError:
        raise invalid(f"unknown action {action!r}", *INPUT, "action") from None


def _verb(action: Action) -> str:
    return _VERBS.get(action, action.value.replace("_", " "))


def _check_inputs(rule: Transition, given: TransitionInput, category: CasePolicy | None) -> None:
    errors: list[DomainError] = []
    for need in sorted(rule.needs):
        if need is Need.AFTER_PHOTOS and not (category is not None and category.after_photos_required):
            continue
        value = _given(need, given)
        if not value:
            errors.append(invalid(_MISSING[need], *INPUT, NEED_FIELDS[need]))
        elif isinstance(value, str) and len(value) > MAX_TEXT:
            errors.append(invalid(f"must be at most {MAX_TEXT} characters", *INPUT, NEED_FIELDS[need]))
    if errors:
        raise DomainErrors(errors)


def _given(need: Need, given: TransitionInput) -> str | Sequence[object] | None:
    match need:
        case Need.REASON:
            return (given.reason or "").strip()
        case Need.NOTE:
            return (given.note or "").strip()
        case Need.AFTER_PHOTOS | Need.CHECK_PHOTO:
            return given.photo_ids
        case Need.DEPARTMENT:
            return given.department_code
        case Need.MERGE_TARGET:
            return given.merge_into
