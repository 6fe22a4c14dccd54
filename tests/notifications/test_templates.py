"""The templates file: every message kind the planner sends exists in both languages, and a broken
city copy is refused when loaded."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from notifications.audience import RESIDENT_KINDS
from notifications.models import Language
from notifications.planner import notification_planner
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
