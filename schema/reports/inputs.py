"""Input types of reports, cases and the routing data."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.scalars import JSON

from kernel.geo import CoordinateSystem
from reports import service
from reports.models import RuleScope


@strawberry.input(description="A point as the device gives it; stored as WGS-84 with the original kept.")
class LocationInput:
    latitude: float
    longitude: float
    crs: CoordinateSystem = CoordinateSystem.WGS84
    accuracy_m: float | None = strawberry.field(default=None, description="The device's accuracy radius.")

    def to_domain(self) -> service.Location:
        return service.Location(self.latitude, self.longitude, self.crs, self.accuracy_m)


@strawberry.input
class SubmitReportInput:
    client_id: str = strawberry.field(
        description="Generated once per report on the device (e.g. a UUID); a retry with it returns the "
        "first result, and the same id with other content is a CONFLICT."
    )
    category_code: str
    location: LocationInput
    description: str = ""
    observed_at: datetime | None = strawberry.field(
        default=None, description="When it happened; now if null."
    )
    evidence: JSON | None = strawberry.field(
        default=None, description="Fields of the category's evidence schema."
    )
    photo_ids: list[strawberry.ID] = strawberry.field(
        default_factory=list, description="0 to 9 uploaded photos."
    )
    anonymous: bool = strawberry.field(default=False, description="Hide who reported from staff.")
    contact_consent: bool = strawberry.field(default=False, description="Staff may contact the resident.")
    join_case: strawberry.ID | None = strawberry.field(
        default=None, description="'Me too': add this report to a case from nearbyCases."
    )


@strawberry.input
class BBoxInput:
    min_latitude: float
    min_longitude: float
    max_latitude: float
    max_longitude: float


@strawberry.input
class CategoryUpdateInput:
    code: str
    name_zh: str | None = None
    name_en: str | None = None
    sla_policy: str | None = None
    evidence_schema: JSON | None = None
    home_related: bool | None = None
    after_photos_required: bool | None = None
    verification_required: bool | None = None
    duplicate_radius_m: float | None = None
    duplicate_window_hours: float | None = None
    notice_zh: str | None = None
    notice_en: str | None = None
    active: bool | None = None


@strawberry.input
class DepartmentUpsertInput:
    code: str
    name: str
    kind: str
    jurisdiction_code: str | None = None


@strawberry.input
class JurisdictionImportInput:
    geojson: JSON = strawberry.field(
        description="A FeatureCollection of (Multi)Polygons in WGS-84 with `code` and `name` properties."
    )


@strawberry.input
class RoutingRuleUpsertInput:
    code: str
    scope: RuleScope
    category: str = strawberry.field(description="A category code or '<group>.*'.")
    source: str = strawberry.field(description="The regulation and article the rule follows.")
    department_kind: str | None = None
    department_code: str | None = None
    jurisdiction_code: str | None = None
    window: JSON | None = strawberry.field(
        default=None, description='e.g. {"from": "22:00", "to": "06:00", "timezone": "Asia/Shanghai"}'
    )
    conditions: JSON | None = strawberry.field(
        default=None, description='e.g. [{"field": "measured_db", "op": ">=", "value": 70}]'
    )
    priority: int = 0


@strawberry.input
class RoutingRuleDeleteInput:
    code: str
