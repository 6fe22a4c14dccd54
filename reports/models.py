"""Reports and cases as stored: the catalog, places and routing rules (all data an admin edits), and
each resident's report with the case it belongs to and the case's append-only event log."""

from __future__ import annotations

import enum
from typing import Any

from tortoise import fields
from tortoise.models import Model

from identity.models import User
from kernel.geo import CoordinateSystem
from reports.categories import CategoryGroup
from reports.lifecycle import Action, Status
from reports.routing import RuleScope


class Jurisdiction(Model):
    """An administrative area as a WGS-84 GeoJSON (Multi)Polygon.

    The bbox columns let a query narrow by area without parsing geometry (no semicolon in a model's
    first docstring line: Tortoise splits SQLite DDL on it)."""

    id = fields.IntField(primary_key=True)
    code = fields.CharField(max_length=32, unique=True)
    name = fields.CharField(max_length=200)
    geometry: fields.JSONField[dict[str, Any]] = fields.JSONField()  # GeoJSON (Multi)Polygon
    min_lat = fields.FloatField()
    min_lon = fields.FloatField()
    max_lat = fields.FloatField()
    max_lon = fields.FloatField()
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "jurisdictions"


class Department(Model):
    id = fields.IntField(primary_key=True)
    code = fields.CharField(max_length=64, unique=True)
    name = fields.CharField(max_length=200)
    kind = fields.CharField(max_length=64, default="")
    # The area it answers for; routing picks the most local department of a rule's kind.
    jurisdiction: fields.ForeignKeyNullableRelation[Jurisdiction] = fields.ForeignKeyField(
        "models.Jurisdiction", related_name="departments", null=True, on_delete=fields.RESTRICT
    )
    jurisdiction_id: int | None
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "departments"


class Category(Model):
    """One reportable nuisance, seeded from reports/data/categories.json and editable by admins."""

    id = fields.IntField(primary_key=True)
    code = fields.CharField(max_length=64, unique=True)
    group = fields.CharEnumField(CategoryGroup, max_length=16)
    name_zh = fields.CharField(max_length=100)
    name_en = fields.CharField(max_length=100)
    sla_policy = fields.CharField(max_length=64, default="hotline_5wd")
    after_photos_required = fields.BooleanField(default=False)
    verification_required = fields.BooleanField(default=False)
    home_related = fields.BooleanField(default=False)
    duplicate_radius_m = fields.FloatField(default=250.0)
    duplicate_window_hours = fields.FloatField(default=24.0)
    # The typed evidence fields in the reports.evidence schema language.
    evidence_schema: fields.JSONField[dict[str, Any]] = fields.JSONField(default=dict)
    notice_zh = fields.TextField(null=True)
    notice_en = fields.TextField(null=True)
    active = fields.BooleanField(default=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "categories"


class ReportSource(enum.StrEnum):
    RESIDENT = "RESIDENT"
    PATROL = "PATROL"  # a chief's patrol observation handed off as a case


class RoutingRule(Model):
    """One row of the routing table (see reports.routing for the precedence)."""

    id = fields.IntField(primary_key=True)
    code = fields.CharField(max_length=128, unique=True)
    scope = fields.CharEnumField(RuleScope, max_length=16)
    category = fields.CharField(max_length=64)  # a category code or "<group>.*"
    department_kind = fields.CharField(max_length=64, null=True)
    department_code = fields.CharField(max_length=64, null=True)
    jurisdiction_code = fields.CharField(max_length=32, null=True)
    # {"from": "22:00", "to": "06:00", "timezone": "Asia/Shanghai"}
    window: fields.JSONField[dict[str, str] | None] = fields.JSONField(null=True)
    # [{"field": "measured_db", "op": ">=", "value": 70}]
    conditions: fields.JSONField[list[dict[str, Any]]] = fields.JSONField(default=list)
    priority = fields.IntField(default=0)
    source = fields.TextField()
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "routing_rules"


class ConfigStamp(Model):
    """A token that changes whenever routing data changes, so every process rebuilds its cached router."""

    key = fields.CharField(max_length=32, primary_key=True)
    token = fields.CharField(max_length=36)

    class Meta:
        table = "config_stamps"


class Priority(enum.IntEnum):
    LOW = 1
    NORMAL = 2
    HIGH = 3
    URGENT = 4


class Case(Model):
    """The unit of work: one nuisance at one place, however many residents reported it."""

    id = fields.IntField(primary_key=True)
    # Printed on receipts and read out on the phone; it opens nothing by itself (access is per object).
    reference = fields.CharField(max_length=24, unique=True)
    category: fields.ForeignKeyRelation[Category] = fields.ForeignKeyField(
        "models.Category", related_name="cases", on_delete=fields.RESTRICT
    )
    category_id: int
    latitude = fields.FloatField()
    longitude = fields.FloatField()
    # Where the public map shows it: a grid-cell centre for categories reported at homes.
    public_latitude = fields.FloatField()
    public_longitude = fields.FloatField()
    status = fields.CharEnumField(Status, max_length=16)
    # Optimistic concurrency for staff transitions; equals the number of transition events.
    version = fields.IntField(default=1)
    department: fields.ForeignKeyNullableRelation[Department] = fields.ForeignKeyField(
        "models.Department", related_name="cases", null=True, on_delete=fields.RESTRICT
    )
    department_id: int | None
    assignee: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="assigned_cases", null=True, on_delete=fields.SET_NULL
    )
    assignee_id: int | None
    priority = fields.IntEnumField(Priority, default=Priority.NORMAL)
    response_due_at = fields.DatetimeField(null=True)
    resolution_due_at = fields.DatetimeField(null=True)
    reporter_count = fields.IntField(default=1)
    report_count = fields.IntField(default=1)
    routing_rule = fields.CharField(max_length=128, null=True)
    routing_reason = fields.TextField(default="")
    # Shown on the public map (and its photos' derivatives served): routed and not rejected.
    public = fields.BooleanField(default=False)
    # The first report's description, for staff text search.
    summary = fields.TextField(default="")
    # Work and deadlines. The SLA clocks start when a department is first given the case (dispatch).
    dispatched_at = fields.DatetimeField(null=True)
    status_changed_at = fields.DatetimeField(null=True)
    responded_at = fields.DatetimeField(null=True)  # accepted or returned, for the current department
    resolved_at = fields.DatetimeField(null=True)  # the latest resolution
    closed_at = fields.DatetimeField(null=True)
    # Intervals [start, end] the resolution clock stood still (the policy's pausing statuses).
    sla_pauses: fields.JSONField[list[list[str]]] = fields.JSONField(default=list)
    # Approved extensions, in the unit of the policy's resolution span.
    sla_extension = fields.FloatField(default=0.0)
    # The policy its deadlines run on: the category's or one of its variants, chosen from the priority and
    # the department's region when a department first gets the case (null: the category's).
    sla_policy = fields.CharField(max_length=64, null=True)
    # The due time a reminder (催办) and an escalation (督办) were recorded for: once each per due time.
    reminded_for = fields.DatetimeField(null=True)
    escalated_for = fields.DatetimeField(null=True)
    resolution_note = fields.TextField(default="")
    resolution_photo_ids: fields.JSONField[list[int]] = fields.JSONField(default=list)
    rework_count = fields.IntField(default=0)
    merged_into: fields.ForeignKeyNullableRelation[Case] = fields.ForeignKeyField(
        "models.Case", related_name="merged_cases", null=True, on_delete=fields.RESTRICT
    )
    merged_into_id: int | None
    # When retention removed its personal details (summary, notes, exact place): see reports.retention.
    anonymized_at = fields.DatetimeField(null=True)
    last_reported_at = fields.DatetimeField()
    created_at = fields.DatetimeField()
    updated_at = fields.DatetimeField()

    class Meta:
        table = "cases"
        # The duplicate search: one category, open statuses, a latitude range, then longitude; nearbyCases
        # the same by the public location (its ranking reads the index alone).
        # Department queues walk (department, status) in due, priority or id order. The escalation
        # and auto-close jobs walk open statuses by due time or by time in status.
        indexes = (
            ("category_id", "status", "latitude", "longitude"),
            ("category_id", "status", "public", "public_latitude", "public_longitude"),
            ("public", "public_latitude", "public_longitude"),
            ("department_id", "status", "resolution_due_at", "id"),
            ("department_id", "status", "response_due_at", "id"),
            ("department_id", "status", "priority", "id"),
            ("department_id", "status", "id"),
            ("status", "resolution_due_at"),
            ("status", "status_changed_at"),
            ("created_at",),
        )


class Report(Model):
    """One submission by one resident. Private: only its reporter and the staff of its case see it."""

    id = fields.IntField(primary_key=True)
    reporter: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="reports", on_delete=fields.RESTRICT
    )
    reporter_id: int
    client_id = fields.CharField(max_length=64)
    fingerprint = fields.CharField(max_length=64)
    category: fields.ForeignKeyRelation[Category] = fields.ForeignKeyField(
        "models.Category", related_name="reports", on_delete=fields.RESTRICT
    )
    category_id: int
    case: fields.ForeignKeyRelation[Case] = fields.ForeignKeyField(
        "models.Case", related_name="reports", on_delete=fields.RESTRICT
    )
    case_id: int
    description = fields.TextField()
    latitude = fields.FloatField()
    longitude = fields.FloatField()
    original_latitude = fields.FloatField()
    original_longitude = fields.FloatField()
    crs = fields.CharEnumField(CoordinateSystem, max_length=8)
    accuracy_m = fields.FloatField(null=True)
    observed_at = fields.DatetimeField()
    evidence: fields.JSONField[dict[str, Any]] = fields.JSONField(default=dict)
    photo_ids: fields.JSONField[list[int]] = fields.JSONField(default=list)
    anonymous = fields.BooleanField(default=False)
    contact_consent = fields.BooleanField(default=False)
    source = fields.CharEnumField(ReportSource, max_length=16, default=ReportSource.RESIDENT)
    # Where a non-resident report came from, e.g. the patrol, observation and area of a hand-off.
    origin: fields.JSONField[dict[str, Any]] = fields.JSONField(default=dict)
    created_at = fields.DatetimeField()
    # When retention removed its reporter's personal fields (see reports.retention); never changed after.
    anonymized_at = fields.DatetimeField(null=True)

    class Meta:
        table = "reports"
        unique_together = (("reporter", "client_id"),)
        # Rate limiting and "my reports" both walk one reporter's reports by time / id; a queue row
        # finds its case's first report with a photo by (case_id, id).
        indexes = (("reporter_id", "created_at"), ("case_id", "id"))


class CaseEvent(Model):
    """Append-only: every change of a case, in order.

    The kind is a lifecycle Action for transitions (so `reports.lifecycle.fold` replays them) or
    another event kind such as `report_added`."""

    id = fields.IntField(primary_key=True)
    case: fields.ForeignKeyRelation[Case] = fields.ForeignKeyField(
        "models.Case", related_name="events", on_delete=fields.RESTRICT
    )
    case_id: int
    actor: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="case_events", null=True, on_delete=fields.SET_NULL
    )
    actor_id: int | None
    kind = fields.CharField(max_length=32)
    # The department the case was with when this happened: the receiving one for route and reroute,
    # the acting one otherwise. Statistics count per department from this column.
    department_id = fields.IntField(null=True)
    from_status = fields.CharEnumField(Status, max_length=16, null=True)
    to_status = fields.CharEnumField(Status, max_length=16, null=True)
    note = fields.TextField(default="")
    data: fields.JSONField[dict[str, Any]] = fields.JSONField(default=dict)
    created_at = fields.DatetimeField()
    # What the statistics read, written with the event so they need neither `data` nor the case:
    # the case's category at the time; for accept, return and resolve with a due time, whether it was
    # made by it (null: no due time); for resolve, seconds since dispatch (the resolution clock's start).
    category_id = fields.IntField(null=True)
    on_time = fields.BooleanField(null=True)
    handling_seconds = fields.FloatField(null=True)
    # For the events statistics count distinct cases by (reports.lifecycle.CASE_COUNTS): when the case
    # last had an event of the same figure, anywhere and in this department. The first of a period's
    # events of a figure for a case is the one whose prior is null or before the period: counting those
    # counts distinct cases without a DISTINCT.
    prior_at = fields.DatetimeField(null=True)
    prior_in_department_at = fields.DatetimeField(null=True)

    class Meta:
        table = "case_events"
        # The second covers every statistics statement: the period's events of a kind, read from the
        # index alone (it replaces (kind, created_at) and (department_id, kind, created_at), which
        # SQLite's planner preferred to it).
        indexes = (
            ("case_id", "id"),
            (
                "kind",
                "created_at",
                "department_id",
                "category_id",
                "on_time",
                "handling_seconds",
                "prior_at",
                "prior_in_department_at",
            ),
        )

    @property
    def action(self) -> str:
        return self.kind

    @property
    def is_transition(self) -> bool:
        return self.kind in _ACTIONS


_ACTIONS = frozenset(Action)


class CaseDayFigures(Model):
    """The statistics' roll-up of the counted case events (reports.rollups): one row per local day of the
    city, kind, department, category and the local days of the event's priors (CaseEvent.prior_at),
    kept with the events, so a period's figures read its days' rows and nothing older.

    No null in the key (a unique index treats nulls as distinct): 0 is no department or category,
    reports.rollups.NO_PRIOR no prior."""

    id = fields.IntField(primary_key=True)
    day = fields.DateField()
    kind = fields.CharField(max_length=32)
    department_id = fields.IntField()
    category_id = fields.IntField()
    prior_day = fields.DateField()
    prior_in_department_day = fields.DateField()
    events = fields.IntField()
    timed = fields.IntField()  # of the events, those with a due time (CaseEvent.on_time not null)
    on_time = fields.IntField()  # of those, the ones made by it

    class Meta:
        table = "case_day_figures"
        unique_together = (
            ("day", "kind", "department_id", "category_id", "prior_day", "prior_in_department_day"),
        )


class CaseFeedback(Model):
    """A reporter's word on a resolved case: a rating of 1 to 5 and a comment, one row per reporter."""

    id = fields.IntField(primary_key=True)
    case: fields.ForeignKeyRelation[Case] = fields.ForeignKeyField(
        "models.Case", related_name="feedback", on_delete=fields.RESTRICT
    )
    case_id: int
    reporter: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="case_feedback", on_delete=fields.RESTRICT
    )
    reporter_id: int
    rating = fields.IntField()
    comment = fields.TextField(default="")
    created_at = fields.DatetimeField()
    updated_at = fields.DatetimeField()

    class Meta:
        table = "case_feedback"
        unique_together = (("case", "reporter"),)
        # The statistics' ratings of a period read this index, not every rating ever given.
        indexes = (("created_at", "case_id", "rating"),)


class ExtensionStatus(enum.StrEnum):
    PENDING = "PENDING"
    APPROVED = "APPROVED"
    DECLINED = "DECLINED"


class DeadlineExtension(Model):
    """A department asks for more time to resolve a case (延期), a dispatcher decides."""

    id = fields.IntField(primary_key=True)
    case: fields.ForeignKeyRelation[Case] = fields.ForeignKeyField(
        "models.Case", related_name="extensions", on_delete=fields.RESTRICT
    )
    case_id: int
    requested_by: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="extension_requests", null=True, on_delete=fields.SET_NULL
    )
    requested_by_id: int | None
    # In the unit of the case's resolution span (working days, working hours, hours or days).
    amount = fields.FloatField()
    reason = fields.TextField()
    status = fields.CharEnumField(ExtensionStatus, max_length=16, default=ExtensionStatus.PENDING)
    decided_by: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="extension_decisions", null=True, on_delete=fields.SET_NULL
    )
    decided_by_id: int | None
    decision_note = fields.TextField(default="")
    created_at = fields.DatetimeField()
    decided_at = fields.DatetimeField(null=True)

    class Meta:
        table = "deadline_extensions"
        indexes = (("case_id", "status"), ("status", "created_at"))
