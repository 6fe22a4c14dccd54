"""The templates file: every message kind the planner sends exists in both languages, and a broken
city copy is refused when loaded."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from notifications.audience import RESIDENT_KINDS
from notifications.models import Language
from notifications.planner import notification_planner, quiet_until
from notifications.templates import DEFAULT_PATH, load_templates


def test_every_kind_the_audience_names_has_both_languages() -> None:
    templates = load_templates()
    sent = {*RESIDENT_KINDS.values(), "case_queued", "case_triage", "case_assigned", "case_reminded",
            "case_escalated", "observation_case_resolved", "patrol_shortfall"}  # fmt: skip
    assert sent <= templates.kinds
    for language in Language:
        text = templates.render("case_closed", language, {"reference": "R1", "category": "X"})
        assert "R1" in text.body and "{" not in text.body
    assert templates.sms_kinds == {"case_accepted", "case_resolved", "case_closed", "case_escalated"}


@pytest.mark.parametrize(
    "breakage",
    [
        lambda raw: raw["kinds"]["case_closed"].pop("en"),
        lambda raw: raw["kinds"]["case_closed"]["zh-CN"].update(body="{phone} 已结案"),
    ],
)
def test_a_broken_city_copy_is_refused_at_start(tmp_path: Path, breakage: object) -> None:
    raw = json.loads(DEFAULT_PATH.read_text(encoding="utf-8"))
    breakage(raw)  # type: ignore[operator]
    path = tmp_path / "templates.json"
    path.write_text(json.dumps(raw, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(ValueError, match="case_closed"):
        notification_planner(path)


@pytest.mark.parametrize(
    ("local", "window", "until"),
    [
        ("23:00", (22 * 60, 7 * 60), "07:00+1"),  # wraps midnight, before it
        ("03:10", (22 * 60, 7 * 60), "07:00"),  # wraps midnight, after it
        ("07:00", (22 * 60, 7 * 60), None),  # the end is outside
        ("21:59", (22 * 60, 7 * 60), None),
        ("13:00", (12 * 60, 14 * 60), "14:00"),  # a daytime window
        ("13:00", (None, None), None),  # no quiet hours
    ],
)
def test_quiet_hours_end_in_city_time(
    local: str, window: tuple[int | None, int | None], until: str | None
) -> None:
    zone = ZoneInfo("Asia/Shanghai")
    hour, minute = map(int, local.split(":"))
    at = datetime(2026, 3, 9, hour, minute, tzinfo=zone).astimezone(UTC)
    found = quiet_until(at, *window, zone)
    if until is None:
        assert found is None
        return
    clock_time, _, next_day = until.partition("+")
    h, m = map(int, clock_time.split(":"))
    assert found == datetime(2026, 3, 9 + int(next_day or 0), h, m, tzinfo=zone)
