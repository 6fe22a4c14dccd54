from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from reports.calendar import WorkingCalendar
from reports.categories import load_categories
from reports.datafile import DataFileError
from reports.lifecycle import Status
from reports.models import Priority
from reports.sla import (
    DeadlineState,
    Span,
    SpanUnit,
    choose_policy,
    deadline_state,
    load_sla_policies,
    paused_intervals,
    resolution_due,
    response_due,
)

SH = ZoneInfo("Asia/Shanghai")
CAL = WorkingCalendar(holidays=frozenset({date(2025, 5, 12)}))
POLICIES = load_sla_policies()


def sh(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2025, 5, day, hour, minute, tzinfo=SH)


def test_shipped_policies_carry_the_research_values() -> None:
    hotline = POLICIES["hotline_5wd"]
    assert hotline.resolution == Span(5, SpanUnit.WORKING_DAYS)
    assert POLICIES["complaint_15wd"].resolution == Span(15, SpanUnit.WORKING_DAYS)
    assert POLICIES["env_report_30d"].resolution == Span(30, SpanUnit.DAYS)
    assert Status.RETURNED in hotline.pause_in_statuses
    assert all(p.source for p in POLICIES.values())


def test_every_category_names_a_known_policy() -> None:
    load_categories(known_sla_policies=POLICIES)


def test_hotline_due_times_skip_weekend_and_holiday() -> None:
    hotline = POLICIES["hotline_5wd"]
    routed = sh(9, 16)  # Friday
    assert response_due(hotline, routed, CAL) == sh(13, 18)  # Monday is a holiday
    # Tue 13, Wed 14, Thu 15, Fri 16, Mon 19.
    assert resolution_due(hotline, routed, CAL) == sh(19, 18)


def test_urgent_policy_runs_round_the_clock() -> None:
    urgent = POLICIES["urgent_24h"]
    assert response_due(urgent, sh(10, 23), CAL) == sh(11, 1)  # Saturday night counts
    assert resolution_due(urgent, sh(10, 23), CAL) == sh(11, 23)


def test_time_spent_returned_extends_the_deadline() -> None:
    history = [(sh(9, 9), Status.ROUTED), (sh(9, 10), Status.RETURNED), (sh(9, 15), Status.ROUTED)]
    pauses = paused_intervals(history, POLICIES["hotline_5wd"].pause_in_statuses, until=sh(20, 0))
    assert pauses == [(sh(9, 10), sh(9, 15))]
    span = Span(8, SpanUnit.WORKING_HOURS)
    # Without the pause: Friday gives 7.5 wh, so Tuesday 9:30 (Monday off); 3.5 paused wh push it on.
    assert span.due(sh(9, 9), CAL) == sh(13, 9, 30)
    assert span.due(sh(9, 9), CAL, pauses) == sh(13, 14, 30)


def test_deadline_states() -> None:
    span = Span(10, SpanUnit.WORKING_HOURS)
    start = sh(13, 9)  # due Wednesday 11:30
    assert deadline_state(span, start, sh(13, 10), CAL) is DeadlineState.ON_TIME
    assert deadline_state(span, start, sh(14, 9, 30), CAL) is DeadlineState.APPROACHING
    assert deadline_state(span, start, sh(14, 11, 30), CAL) is DeadlineState.APPROACHING
    assert deadline_state(span, start, sh(14, 11, 31), CAL) is DeadlineState.OVERDUE
    # A pause moves the due time, so the same moment is no longer overdue.
    pause = [(sh(13, 9), sh(13, 12))]
    assert deadline_state(span, start, sh(14, 11, 31), CAL, pause) is DeadlineState.ON_TIME


def test_bad_policy_file_is_refused(tmp_path) -> None:
    bad = tmp_path / "sla.json"
    bad.write_text(
        '{"policies": [{"code": "x", "description": "d", "source": "s", "pause_in_statuses": ["PAUSED"],'
        ' "response": {"hours": 1}, "resolution": {"hours": 2}}]}'
    )
    with pytest.raises(DataFileError, match="pause_in_statuses"):
        load_sla_policies(bad)
    bad.write_text(
        '{"policies": [{"code": "x", "description": "d", "source": "s", "pause_in_statuses": [],'
        ' "response": {"weeks": 1}, "resolution": {"hours": 2}}]}'
    )
    with pytest.raises(DataFileError, match="exactly one"):
        load_sla_policies(bad)


def test_elapsed_measure_uses_its_own_clock() -> None:
    assert Span(1, SpanUnit.DAYS).measure(sh(10, 0), sh(11, 0), CAL) == timedelta(days=1)
    assert Span(1, SpanUnit.WORKING_DAYS).measure(sh(10, 0), sh(11, 0), CAL) == timedelta()


def test_urgent_complaints_run_on_the_urgent_policy() -> None:
    for code in ("hotline_5wd", "complaint_15wd"):
        assert choose_policy(POLICIES, code, Priority.URGENT, "999901") == "urgent_24h"
        assert choose_policy(POLICIES, code, Priority.HIGH, "999901") == code
    # Inspections and sampling take what they take, however urgent.
    assert choose_policy(POLICIES, "env_report_30d", Priority.URGENT, None) == "env_report_30d"
    assert choose_policy(POLICIES, "unknown", Priority.URGENT, None) == "unknown"


def _policy(code: str, **extra: Any) -> dict[str, Any]:
    return {
        "code": code,
        "description": code,
        "source": "test",
        "pause_in_statuses": ["RETURNED"],
        "response": {"hours": 1},
        "resolution": {"hours": 2},
        **extra,
    }


def _write(tmp_path: Path, variants: list[dict[str, Any]]) -> Path:
    others = [_policy(code) for code in ("fast", "faster", "fastest", "slow")]
    path = tmp_path / "sla.json"
    path.write_text(json.dumps({"policies": [_policy("base", variants=variants), *others]}))
    return path


def test_the_most_specific_variant_wins(tmp_path: Path) -> None:
    variants: list[dict[str, Any]] = [
        {"priorities": ["HIGH", "URGENT"], "use": "fast", "source": "s"},
        {"region": "9999", "use": "slow", "source": "s"},
        {"region": "999901", "use": "faster", "source": "s"},
        {"region": "9999", "priorities": ["URGENT"], "use": "fastest", "source": "s"},
        {"region": "9999", "use": "fast", "source": "listed second: never chosen"},
    ]
    policies = load_sla_policies(_write(tmp_path, variants))

    def chosen(priority: Priority, region: str | None) -> str:
        return choose_policy(policies, "base", priority, region)

    assert chosen(Priority.NORMAL, None) == "base"
    assert chosen(Priority.NORMAL, "370200") == "base"
    assert chosen(Priority.HIGH, None) == "fast"  # no region: only priority variants can match
    assert chosen(Priority.HIGH, "370200") == "fast"
    assert chosen(Priority.NORMAL, "999902") == "slow"  # region beats priorities; the first listed
    assert chosen(Priority.HIGH, "999902") == "slow"
    assert chosen(Priority.HIGH, "999901") == "faster"  # the longer prefix
    assert chosen(Priority.URGENT, "999901") == "fastest"  # region and priorities beat a longer prefix
    # The target's own variants are not followed.
    assert choose_policy(policies, "fast", Priority.URGENT, "999901") == "fast"


@pytest.mark.parametrize(
    ("variant", "message"),
    [
        ({"use": "fast", "source": "s"}, "needs a region, priorities or both"),
        ({"priorities": [], "use": "fast", "source": "s"}, "list at least one"),
        ({"priorities": ["CRITICAL"], "use": "fast", "source": "s"}, r"unknown \['CRITICAL'\]"),
        ({"priorities": "URGENT", "use": "fast", "source": "s"}, "priorities: expected"),
        ({"region": "99-01", "use": "fast", "source": "s"}, "region: a region-code prefix of digits"),
        ({"region": "", "use": "fast", "source": "s"}, "region: a region-code prefix of digits"),
        ({"region": 9999, "use": "fast", "source": "s"}, "region: expected"),
        ({"region": "9999", "use": "nowhere", "source": "s"}, "variants.0.use: 'nowhere' is not another"),
        ({"region": "9999", "use": "base", "source": "s"}, "'base' is not another policy"),
        ({"region": "9999", "source": "s"}, "variants.0.use: missing"),
        ({"region": "9999", "use": "fast"}, "variants.0.source: missing"),
        ({"region": "9999", "use": "fast", "source": "s", "city": "x"}, r"unknown keys \['city'\]"),
        ("URGENT", "policies.0.variants.0: expected"),
    ],
)
def test_bad_variants_are_refused(tmp_path: Path, variant: Any, message: str) -> None:
    with pytest.raises(DataFileError, match=message):
        load_sla_policies(_write(tmp_path, [variant]))
