"""`python -m server seed-demo`: a small demo city so a newcomer sees real data at once.

Idempotent: every row is looked up by its natural key first, so running it again changes nothing.
The demo accounts share one password (printed at the end); never seed a production database.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

from identity.models import Role, User
from identity.service import hash_password
from patrols.areas import upsert_area
from patrols.compliance import upsert_rules
from patrols.models import AreaKind, ChiefAssignment, ChiefKind, ChiefLevel, VolunteerEnrollment
from patrols.rules import SEED_RULES_PATH
from reports.categories import load_categories
from reports.datafile import read_json
from reports.models import Department
from reports.routing import Jurisdiction, load_routing_rules
from reports.store import seed_routing_data

DEMO_CITY = Path(__file__).with_name("demo") / "demo_city.json"
DEMO_ROUTING = Path(__file__).with_name("demo") / "routing_city_999900.json"
DEMO_PATROL_RULES = Path(__file__).with_name("demo") / "demo_patrol_rules.json"


def load_demo_city() -> dict[str, Any]:
    return json.loads(DEMO_CITY.read_text(encoding="utf-8"))


async def _seed_reports(city: dict[str, Any]) -> None:
    """Categories, the demo city's places and departments, the national rules and the city's own."""
    evidence = {c["code"]: c.get("evidence", {}) for c in read_json("categories.json")["categories"]}
    await seed_routing_data(
        categories=[(c, evidence[c.code]) for c in load_categories()],
        jurisdictions=[
            Jurisdiction.from_geojson(j["code"], j["name"], j["geometry"]) for j in city["jurisdictions"]
        ],
        departments=[(d["code"], d["name"], d["kind"], d["jurisdiction"]) for d in city["departments"]],
        rules=load_routing_rules("routing_national.json", DEMO_ROUTING).rules,
    )


async def _seed_accounts(city: dict[str, Any]) -> dict[str, User]:
    departments = {d.code: d for d in await Department.all()}
    password_hash = hash_password(city["password"])
    users = {}
    for item in city["accounts"]:
        department = departments[item["department"]] if "department" in item else None
        users[item["username"]], _ = await User.get_or_create(
            username=item["username"],
            defaults={
                "role": Role(item["role"]),
                "display_name": item["display_name"],
                "password_hash": password_hash,
                "department": department,
            },
        )
    return users


async def _seed_patrols(city: dict[str, Any], users: dict[str, User]) -> None:
    areas = {}
    for item in city["patrol_areas"]:
        areas[item["code"]] = await upsert_area(
            code=item["code"],
            name=item["name"],
            kind=AreaKind(item["kind"]),
            admin_region=item["admin_region"],
            geometry=item["geometry"],
        )
    for item in city["assignments"]:
        await ChiefAssignment.get_or_create(
            chief=users[item["chief"]],
            area=areas[item["area"]],
            level=ChiefLevel(item["level"]),
            defaults={"kind": ChiefKind(item["kind"]), "valid_from": date(2026, 1, 1)},
        )
    admin = users["admin"]
    for item in city.get("volunteer_enrollments", []):
        await VolunteerEnrollment.get_or_create(
            volunteer=users[item["volunteer"]],
            area=areas[item["area"]],
            valid_from=date(2026, 1, 1),
            defaults={"enrolled_by_id": admin.id},
        )
    for path in (SEED_RULES_PATH, DEMO_PATROL_RULES):
        await upsert_rules(json.loads(path.read_text(encoding="utf-8"))["rules"])


async def seed_demo() -> None:
    city = load_demo_city()
    await _seed_reports(city)
    users = await _seed_accounts(city)
    await _seed_patrols(city, users)
    print(f"demo city ready: {len(users)} accounts share the password {city['password']!r}")
