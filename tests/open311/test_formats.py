"""The JSON answers keep json.dumps's bytes while pydantic-core writes them (open311.formats)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from open311.formats import Format, render_list, render_object


def _dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


@pytest.mark.parametrize(
    "records",
    [
        [
            {
                "lat": 30.15,
                "long": 120.00001,
                "notes": "收到 Received on 2026-12-07.",
                "zipcode": None,
                "ok": True,
            }
        ],
        [{"lat": 1e-05, "long": 0.0}],  # pydantic-core alone would write 0.00001
        [{"lat": -1.5e-07, "long": 120.1}],  # and -1.5e-7
        [{"code": "x", "attributes": [{"values": [{"key": "a", "min": 2e-06}]}]}],
    ],
)
def test_json_answers_are_spelled_as_json_dumps_spells_them(records: list[dict[str, Any]]) -> None:
    assert render_list(Format.JSON, "service_requests", "request", records) == _dumps(records)
    assert render_object(Format.JSON, "service_definition", records[0]) == _dumps(records[0])
