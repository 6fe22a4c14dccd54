from __future__ import annotations

from dataclasses import dataclass

import pytest

from identity.models import Role
from kernel.errors import DomainError, DomainErrors, ErrorCode
from reports.lifecycle import (
    SYSTEM,
    TRANSITIONS,
    Action,
    Actor,
    Status,
    TransitionInput,
    allowed_actions,
    check_transition,
    fold,
)

REPORTER = Actor(Role.CITIZEN, is_reporter=True)
STRANGER = Actor(Role.CITIZEN)
STAFF = Actor(Role.STAFF, in_case_department=True)
OTHER_STAFF = Actor(Role.STAFF)
DISPATCHER = Actor(Role.DISPATCHER)
ADMIN = Actor(Role.ADMIN)
CHIEF_REPORTER = Actor(Role.CHIEF, is_reporter=True)

REASON = TransitionInput(reason="outside our district")
DEPT = TransitionInput(department_code="sh-huangpu-cg")
NOTE = TransitionInput(note="site visited, work stopped")
MERGE = TransitionInput(merge_into="C-2025-000123")
CHECKED = TransitionInput(photo_ids=[9])
CHECKED_FAILED = TransitionInput(reason="still dumping", photo_ids=[9])


@dataclass(frozen=True)
class Cat:
    after_photos_required: bool = False
    verification_required: bool = False


VERIFIED_CAT = Cat(verification_required=True)
PHOTO_CAT = Cat(after_photos_required=True)

# Each happy path: (action, from, actor, input, category, expected).
ALLOWED = [
    (Action.SUBMIT, None, REPORTER, TransitionInput(), None, Status.SUBMITTED),
    (Action.SUBMIT, None, CHIEF_REPORTER, TransitionInput(), None, Status.SUBMITTED),
    (Action.ROUTE, Status.SUBMITTED, SYSTEM, DEPT, None, Status.ROUTED),
    (Action.TRIAGE, Status.SUBMITTED, SYSTEM, TransitionInput(), None, Status.TRIAGE),
    (Action.REROUTE, Status.TRIAGE, DISPATCHER, DEPT, None, Status.ROUTED),
    (Action.REROUTE, Status.RETURNED, ADMIN, DEPT, None, Status.ROUTED),
    (Action.ACCEPT, Status.ROUTED, STAFF, TransitionInput(), None, Status.ACCEPTED),
    (Action.RETURN, Status.ROUTED, STAFF, REASON, None, Status.RETURNED),
    (Action.RETURN, Status.ACCEPTED, STAFF, REASON, None, Status.RETURNED),
    (Action.START, Status.ACCEPTED, STAFF, TransitionInput(), None, Status.IN_PROGRESS),
    (Action.START, Status.REOPENED, STAFF, TransitionInput(), None, Status.IN_PROGRESS),
    (Action.RESOLVE, Status.IN_PROGRESS, STAFF, NOTE, None, Status.RESOLVED),
    (
        Action.RESOLVE,
        Status.IN_PROGRESS,
        STAFF,
        TransitionInput(note="fixed", photo_ids=[1]),
        PHOTO_CAT,
        Status.RESOLVED,
    ),
    (Action.VERIFY_PASS, Status.RESOLVED, DISPATCHER, CHECKED, VERIFIED_CAT, Status.VERIFIED),
    (Action.VERIFY_FAIL, Status.RESOLVED, DISPATCHER, CHECKED_FAILED, VERIFIED_CAT, Status.IN_PROGRESS),
    (Action.CONFIRM, Status.RESOLVED, REPORTER, TransitionInput(), Cat(), Status.CLOSED),
    (Action.CONFIRM, Status.VERIFIED, REPORTER, TransitionInput(), VERIFIED_CAT, Status.CLOSED),
    (Action.DISPUTE, Status.RESOLVED, REPORTER, REASON, None, Status.REOPENED),
    (Action.DISPUTE, Status.VERIFIED, REPORTER, REASON, None, Status.REOPENED),
    (Action.AUTO_CLOSE, Status.RESOLVED, SYSTEM, TransitionInput(), Cat(), Status.CLOSED),
    (Action.AUTO_CLOSE, Status.VERIFIED, SYSTEM, TransitionInput(), VERIFIED_CAT, Status.CLOSED),
    (Action.REJECT, Status.TRIAGE, DISPATCHER, REASON, None, Status.REJECTED),
    (Action.MERGE, Status.ROUTED, DISPATCHER, MERGE, None, Status.MERGED),
    (Action.MERGE, Status.SUBMITTED, SYSTEM, MERGE, None, Status.MERGED),
]


@pytest.mark.parametrize(("action", "status", "actor", "given", "category", "expected"), ALLOWED)
def test_allowed_transitions(action, status, actor, given, category, expected) -> None:
    assert check_transition(action, status, actor, given, category) is expected


def test_every_action_has_a_happy_path_above() -> None:
    assert {row[0] for row in ALLOWED} == set(TRANSITIONS)


def error_of(*args) -> DomainError:
    with pytest.raises(DomainError) as info:
        check_transition(*args)
    return info.value


@pytest.mark.parametrize(
    ("action", "status", "actor", "given"),
    [
        (Action.ACCEPT, Status.ROUTED, OTHER_STAFF, TransitionInput()),  # another department
        (Action.ACCEPT, Status.ROUTED, DISPATCHER, TransitionInput()),
        (Action.CONFIRM, Status.RESOLVED, STRANGER, TransitionInput()),  # not the reporter
        (Action.CONFIRM, Status.RESOLVED, STAFF, TransitionInput()),
        (Action.DISPUTE, Status.RESOLVED, DISPATCHER, REASON),
        (Action.ROUTE, Status.SUBMITTED, DISPATCHER, DEPT),  # only the router routes
        (Action.REROUTE, Status.RETURNED, STAFF, DEPT),
        (Action.VERIFY_PASS, Status.RESOLVED, STAFF, TransitionInput()),  # not one's own work
        (Action.REJECT, Status.TRIAGE, REPORTER, REASON),
        (Action.AUTO_CLOSE, Status.RESOLVED, ADMIN, TransitionInput()),
        (Action.SUBMIT, None, STRANGER, TransitionInput()),
    ],
)
def test_wrong_role_is_forbidden(action, status, actor, given) -> None:
    assert error_of(action, status, actor, given).code is ErrorCode.FORBIDDEN


def test_wrong_role_learns_nothing_about_the_state() -> None:
    err = error_of(Action.ACCEPT, Status.CLOSED, OTHER_STAFF)
    assert err.code is ErrorCode.FORBIDDEN and "CLOSED" not in err.message


@pytest.mark.parametrize(
    ("action", "status", "actor", "message"),
    [
        (Action.ACCEPT, Status.RESOLVED, STAFF, "cannot accept a case that is RESOLVED"),
        (Action.RESOLVE, Status.ACCEPTED, STAFF, "cannot resolve a case that is ACCEPTED"),
        (Action.CONFIRM, Status.IN_PROGRESS, REPORTER, "cannot confirm a case that is IN_PROGRESS"),
        (Action.REJECT, Status.CLOSED, DISPATCHER, "cannot reject a case that is CLOSED"),
        (Action.MERGE, Status.MERGED, DISPATCHER, "cannot merge a case that is MERGED"),
        (Action.START, Status.ROUTED, STAFF, "cannot start a case that is ROUTED"),
        (Action.SUBMIT, Status.SUBMITTED, REPORTER, "cannot submit a case that is SUBMITTED"),
        (Action.ACCEPT, None, STAFF, "cannot accept a case that does not exist"),
    ],
)
def test_wrong_state_is_a_conflict(action, status, actor, message) -> None:
    err = error_of(action, status, actor, REASON)
    assert (err.code, err.message) == (ErrorCode.CONFLICT, message)


def test_verification_categories_cannot_skip_the_check() -> None:
    err = error_of(Action.CONFIRM, Status.RESOLVED, REPORTER, TransitionInput(), VERIFIED_CAT)
    assert err.code is ErrorCode.CONFLICT and "verified first" in err.message
    assert error_of(Action.AUTO_CLOSE, Status.RESOLVED, SYSTEM, TransitionInput(), VERIFIED_CAT).code is (
        ErrorCode.CONFLICT
    )


@pytest.mark.parametrize(
    ("action", "status", "actor", "field", "message"),
    [
        (Action.RETURN, Status.ROUTED, STAFF, "reason", "a reason is required"),
        (Action.DISPUTE, Status.RESOLVED, REPORTER, "reason", "a reason is required"),
        (Action.REJECT, Status.SUBMITTED, DISPATCHER, "reason", "a reason is required"),
        (Action.VERIFY_FAIL, Status.RESOLVED, DISPATCHER, "photoIds", "a photo of the check is required"),
        (Action.RESOLVE, Status.IN_PROGRESS, STAFF, "note", "a resolution note is required"),
        (Action.ROUTE, Status.SUBMITTED, SYSTEM, "departmentCode", "a department is required"),
        (Action.REROUTE, Status.TRIAGE, DISPATCHER, "departmentCode", "a department is required"),
        (Action.MERGE, Status.ROUTED, DISPATCHER, "intoCase", "the case to merge into is required"),
    ],
)
def test_missing_input_is_invalid(action, status, actor, field, message) -> None:
    err = error_of(action, status, actor, TransitionInput(reason="   "))
    assert (err.code, err.field, err.message) == (ErrorCode.INVALID, ["input", field], message)


def test_after_photos_only_where_the_category_requires_them() -> None:
    with pytest.raises(DomainErrors) as info:
        check_transition(Action.RESOLVE, Status.IN_PROGRESS, STAFF, TransitionInput(), PHOTO_CAT)
    assert {tuple(e.field or ()) for e in info.value.errors} == {("input", "note"), ("input", "photoIds")}
    assert check_transition(Action.RESOLVE, Status.IN_PROGRESS, STAFF, NOTE, Cat()) is Status.RESOLVED


def test_overlong_reason_is_refused() -> None:
    err = error_of(Action.RETURN, Status.ROUTED, STAFF, TransitionInput(reason="x" * 2001))
    assert err.message == "must be at most 2000 characters"


def test_unknown_action_is_invalid() -> None:
    assert error_of("teleport", Status.ROUTED, ADMIN).code is ErrorCode.INVALID


def test_allowed_actions_for_the_queue_buttons() -> None:
    assert allowed_actions(Status.ROUTED, STAFF) == [Action.ACCEPT, Action.RETURN]
    assert allowed_actions(Status.RESOLVED, REPORTER, VERIFIED_CAT) == [Action.DISPUTE]
    assert allowed_actions(Status.RESOLVED, REPORTER, Cat()) == [Action.CONFIRM, Action.DISPUTE]


@dataclass(frozen=True)
class Event:
    action: str


def events(*actions: Action) -> list[Event]:
    return [Event(a.value) for a in actions]


def test_fold_replays_the_log() -> None:
    log = events(
        Action.SUBMIT,
        Action.ROUTE,
        Action.RETURN,
        Action.REROUTE,
        Action.ACCEPT,
        Action.START,
        Action.RESOLVE,
        Action.VERIFY_FAIL,
        Action.RESOLVE,
        Action.VERIFY_PASS,
        Action.DISPUTE,
        Action.START,
        Action.RESOLVE,
        Action.CONFIRM,
    )
    assert fold(log) == (Status.CLOSED, 14)
    assert fold(log[:3]) == (Status.RETURNED, 3)
    assert fold(events(Action.SUBMIT, Action.TRIAGE, Action.MERGE)) == (Status.MERGED, 3)


def test_fold_refuses_a_corrupt_log() -> None:
    with pytest.raises(ValueError, match="cannot follow"):
        fold(events(Action.SUBMIT, Action.ACCEPT))
    with pytest.raises(ValueError, match="cannot follow"):
        fold(events(Action.ROUTE))
    with pytest.raises(ValueError, match="starts with"):
        fold([])
