"""A stand-in for `reports.intake.open_case` until the reports branch provides it (see patrols/handoff.py).

It follows the contract and routes with the real pure routing library over the demo city, so the
hand-off tests check the department a patrol finding lands in. At merge, the integrator deletes this
file and the `set_case_opener` calls, and the tests run against the real intake.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from reports.categories import load_categories
from reports.routing import Department, Jurisdiction, JurisdictionIndex, Router, load_routing_rules
from server.seed import load_demo_city


@dataclass
class OpenedCase:
    id: int
    reference: str
    department_code: str | None
    kwargs: dict[str, Any] = field(default_factory=dict)


class CaseDesk:
    def __init__(self) -> None:
        city = load_demo_city()
        places = JurisdictionIndex(
            Jurisdiction.from_geojson(j["code"], j["name"], j["geometry"]) for j in city["jurisdictions"]
        )
        departments = [Department(d["code"], d["kind"], d["jurisdiction"]) for d in city["departments"]]
        self.router = Router(load_categories(), load_routing_rules().rules, places, departments)
        self.cases: dict[str, OpenedCase] = {}
        self._ids = itertools.count(1)

    async def open_case(
        self,
        *,
        source: str,
        reporter_id: int,
        category_code: str,
        lat: float,
        lon: float,
        description: str,
        photo_ids: list[int],
        client_id: str,
        occurred_at: datetime,
        extra: dict[str, Any],
    ) -> OpenedCase:
        if client_id not in self.cases:
            decision = self.router.route((lon, lat), category_code, {}, occurred_at)
            n = next(self._ids)
            self.cases[client_id] = OpenedCase(
                n,
                f"C-2026-{n:05d}",
                decision.department_code,
                dict(locals_of(source, reporter_id, category_code, description, photo_ids, extra)),
            )
        return self.cases[client_id]


def locals_of(
    source: str, reporter_id: int, category: str, description: str, photos: list[int], extra: dict
) -> dict:
    return {
        "source": source,
        "reporter_id": reporter_id,
        "category": category,
        "description": description,
        "photo_ids": photos,
        "extra": extra,
    }
