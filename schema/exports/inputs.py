"""Inputs of exports: one `exportStart` input for every kind, its parts read by the kind asked for."""

from __future__ import annotations

from dataclasses import asdict
from datetime import date, datetime
from typing import Any

import strawberry

from exports.jobs import ExportRequest
from exports.models import ExportFormat, ExportKind
from patrols.office import OfficeDimension
from reports.statistics import Dimension
from schema.node import decode_id
from schema.reports.inputs import CaseQueueFilter


def _optional_id(value: strawberry.ID | None, type_name: str, name: str) -> int | None:
    return None if value is None else decode_id(value, type_name, "input", name)


@strawberry.input(description="Days from `from` up to the day before `to`, in the city's timezone.")
class ExportPeriodInput:
    from_: date = strawberry.field(name="from")
    to: date


@strawberry.input(
    description="What to export. Cases read `departmentId`, `cases`, `createdFrom`, `createdTo`; statistics "
    "`period`, `departmentId`, `categoryId`, `groupBy`; compliance `period`, `chiefId`, `areaId`, `region`; "
    "office figures `officePeriod`, `region`, `officeGroupBy`, `regionDigits`."
)
class ExportStartInput:
    client_id: str = strawberry.field(description="The client's token: a retry with it creates nothing.")
    kind: ExportKind
    format: ExportFormat = strawberry.field(description="GEOJSON for cases only.")
    department_id: strawberry.ID | None = strawberry.field(
        default=None, description="Cases or statistics of one department; staff always get their own."
    )
    cases: CaseQueueFilter | None = strawberry.field(
        default=None, description="The queue's filters; without statuses, every status."
    )
    created_from: datetime | None = None
    created_to: datetime | None = None
    period: ExportPeriodInput | None = None
    category_id: strawberry.ID | None = None
    group_by: list[Dimension] | None = strawberry.field(default=None, description="Default: DEPARTMENT.")
    chief_id: strawberry.ID | None = None
    area_id: strawberry.ID | None = None
    region: str | None = strawberry.field(default=None, description="Areas whose division code starts so.")
    office_period: str | None = strawberry.field(
        default=None, description="Office figures: the period, as officeFigures takes it (2026-Q2)."
    )
    office_group_by: list[OfficeDimension] | None = strawberry.field(
        default=None, description="Office figures: how to group (default AREA)."
    )
    region_digits: int | None = strawberry.field(
        default=None, description="Office figures grouped by REGION: how many leading digits."
    )

    def to_domain(self) -> ExportRequest:
        parameters: dict[str, Any] = {
            "department_id": _optional_id(self.department_id, "Department", "departmentId"),
            "category_id": _optional_id(self.category_id, "Category", "categoryId"),
            "chief_id": _optional_id(self.chief_id, "User", "chiefId"),
            "area_id": _optional_id(self.area_id, "PatrolArea", "areaId"),
            "region": self.region,
            "created_from": self.created_from.isoformat() if self.created_from else None,
            "created_to": self.created_to.isoformat() if self.created_to else None,
            "group_by": [d.value for d in self.group_by] if self.group_by is not None else None,
            "office_period": self.office_period,
            "office_group_by": [d.value for d in self.office_group_by] if self.office_group_by else None,
            "region_digits": self.region_digits,
        }
        if self.period is not None:
            parameters |= {"from": self.period.from_.isoformat(), "to": self.period.to.isoformat()}
        if self.cases is not None:
            given = self.cases
            parameters |= {
                "statuses": [s.value for s in given.statuses] if given.statuses else None,
                "category_code": given.category_code,
                "priorities": [p.name for p in given.priorities] if given.priorities else None,
                "overdue": given.overdue,
                "due_before": given.due_before.isoformat() if given.due_before else None,
                "bbox": asdict(given.bbox.to_domain()) if given.bbox else None,
                "text": given.text,
            }
        given_only = {key: value for key, value in parameters.items() if value is not None}
        return ExportRequest(self.client_id, self.kind, self.format, given_only)


@strawberry.input
class ExportCancelInput:
    id: strawberry.ID
