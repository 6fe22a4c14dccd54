"""Patrol areas, chiefs' assignments and delegations, patrols with their tracks and observations, and
the patrol rules as rows.

The closed sets (levels, kinds, modes) are defined once, in the pure libraries (`patrols.rules`,
`patrols.track`), and only re-used here.
"""

from __future__ import annotations

import enum
from typing import Any

from tortoise import fields
from tortoise.models import Model

from identity.models import User
from patrols.rules import AreaKind, ChiefKind, ChiefLevel
from patrols.track import PatrolMode

__all__ = [
    "AreaKind",
    "ChiefAssignment",
    "ChiefKind",
    "ChiefLevel",
    "Delegation",
    "Observation",
    "OfficeAssessmentMethodRow",
    "Patrol",
    "PatrolArea",
    "PatrolMode",
    "PatrolRuleRow",
    "PatrolStatus",
    "TrackPoint",
    "VolunteerEnrollment",
]


class PatrolStatus(enum.StrEnum):
    RECORDING = "RECORDING"
    PAUSED = "PAUSED"
    FINISHED = "FINISHED"


class PatrolArea(Model):
    """A river segment (LineString) or a lake / forest area (Polygon), WGS-84 GeoJSON."""

    id = fields.IntField(primary_key=True)
    code = fields.CharField(max_length=64, unique=True)
    name = fields.CharField(max_length=200)
    kind = fields.CharEnumField(AreaKind, max_length=16)
    admin_region = fields.CharField(max_length=12, db_index=True)
    geometry: fields.JSONField[dict[str, Any]] = fields.JSONField()  # GeoJSON geometry in WGS-84
    # Computed on import, on the ellipsoid: length of the line (or of the polygon's boundary), area.
    length_m = fields.FloatField(default=0.0)
    area_m2 = fields.FloatField(default=0.0)
    min_lat = fields.FloatField(default=0.0)
    min_lon = fields.FloatField(default=0.0)
    max_lat = fields.FloatField(default=0.0)
    max_lon = fields.FloatField(default=0.0)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "patrol_areas"


class ChiefAssignment(Model):
    """Who is responsible for an area, at which level, from when to when. Never deleted: ending an
    assignment sets `valid_to`, so past periods are judged against who was responsible then."""

    id = fields.IntField(primary_key=True)
    chief: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="assignments", on_delete=fields.RESTRICT
    )
    chief_id: int
    area: fields.ForeignKeyRelation[PatrolArea] = fields.ForeignKeyField(
        "models.PatrolArea", related_name="assignments", on_delete=fields.RESTRICT
    )
    area_id: int
    level = fields.CharEnumField(ChiefLevel, max_length=16)
    kind = fields.CharEnumField(ChiefKind, max_length=16)
    valid_from = fields.DateField()
    valid_to = fields.DateField(null=True)  # inclusive; null = still in office
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "chief_assignments"
        indexes = (("chief_id", "valid_from"), ("area_id", "valid_from"))


class Delegation(Model):
    """A chief lets an assistant (河长助理) patrol for them for a period. The assistant signs in with
    their own account and their patrols count for the chief, saying so."""

    id = fields.IntField(primary_key=True)
    chief: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="delegations_given", on_delete=fields.RESTRICT
    )
    chief_id: int
    assistant: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="delegations_received", on_delete=fields.RESTRICT
    )
    assistant_id: int
    valid_from = fields.DateField()
    valid_to = fields.DateField()  # inclusive
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "patrol_delegations"
        indexes = (("assistant_id", "valid_from"),)


class VolunteerEnrollment(Model):
    """A social supervisor (民间河长) enrolled to patrol an area for a period.

    Made by an admin or the chief office; never deleted: ending it sets `valid_to`."""

    id = fields.IntField(primary_key=True)
    volunteer: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="volunteer_enrollments", on_delete=fields.RESTRICT
    )
    volunteer_id: int
    area: fields.ForeignKeyRelation[PatrolArea] = fields.ForeignKeyField(
        "models.PatrolArea", related_name="volunteer_enrollments", on_delete=fields.RESTRICT
    )
    area_id: int
    valid_from = fields.DateField()
    valid_to = fields.DateField(null=True)  # inclusive; null = open-ended
    enrolled_by_id = fields.IntField()  # the admin or office clerk, kept for the record
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "patrol_volunteer_enrollments"
        # One enrollment per volunteer, area and start: a retried enrollment finds the first.
        unique_together = (("volunteer", "area", "valid_from"),)
        indexes = (("area_id", "valid_from"),)


class Patrol(Model):
    id = fields.IntField(primary_key=True)
    client_id = fields.CharField(max_length=64)
    fingerprint = fields.CharField(max_length=64)
    # The account that recorded it, and the chief it counts for (differs when an assistant patrols).
    chief: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="patrols", on_delete=fields.RESTRICT
    )
    chief_id: int
    counted_for: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="patrols_counted", on_delete=fields.RESTRICT
    )
    counted_for_id: int
    area: fields.ForeignKeyRelation[PatrolArea] = fields.ForeignKeyField(
        "models.PatrolArea", related_name="patrols", on_delete=fields.RESTRICT
    )
    area_id: int
    # Recorded by a social supervisor (民间河长): counted apart, never in a chief's compliance.
    by_volunteer = fields.BooleanField(default=False)
    mode = fields.CharEnumField(PatrolMode, max_length=8)
    status = fields.CharEnumField(PatrolStatus, max_length=10, default=PatrolStatus.RECORDING)
    started_at = fields.DatetimeField()  # as the device claims
    started_received_at = fields.DatetimeField()  # when the server heard of it
    finished_at = fields.DatetimeField(null=True)
    finished_received_at = fields.DatetimeField(null=True)
    # [[paused_at, resumed_at | null], ...] in device time, ISO strings.
    pauses: fields.JSONField[list[list[str | None]]] = fields.JSONField(default=list)
    # Server minus device clock (seconds), from the latest request that told the device's send time.
    clock_skew_s = fields.FloatField(null=True)
    # Sequence numbers the server holds, as sorted [[first, last], ...] ranges (the phone's ack).
    held_ranges: fields.JSONField[list[list[int]]] = fields.JSONField(default=list)
    point_count = fields.IntField(default=0)
    last_upload_at = fields.DatetimeField(null=True)  # when the latest new points arrived
    # Metrics, computed on finish and again whenever points arrive after it.
    valid_point_count = fields.IntField(null=True)
    flagged_point_count = fields.IntField(null=True)
    duration_s = fields.FloatField(null=True)
    moving_time_s = fields.FloatField(null=True)
    distance_m = fields.FloatField(null=True)  # used distance: smoothed and thinned (patrols.track)
    raw_distance_m = fields.FloatField(null=True)  # plain sum of the steps between valid fixes
    pause_time_s = fields.FloatField(null=True)
    gap_time_s = fields.FloatField(null=True)
    # What the straightness and regularity signals measured (patrols.metrics.signals_json).
    track_signals: fields.JSONField[dict[str, Any]] = fields.JSONField(null=True)
    coverage = fields.FloatField(null=True)  # 0..1 share of the area's line / boundary covered
    authenticity_flags: fields.JSONField[list[str]] = fields.JSONField(default=list)
    authenticity_reasons: fields.JSONField[list[str]] = fields.JSONField(default=list)
    late_upload = fields.BooleanField(default=False)  # points arrived more than a day after the finish
    metrics_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    # When retention deleted its track points (patrols.retention); the metrics above stay.
    track_removed_at = fields.DatetimeField(null=True)

    class Meta:
        table = "patrols"
        unique_together = (("chief", "client_id"),)
        indexes = (("counted_for_id", "started_at"), ("area_id", "started_at"))


class TrackPoint(Model):
    id = fields.BigIntField(primary_key=True)
    patrol: fields.ForeignKeyRelation[Patrol] = fields.ForeignKeyField(
        "models.Patrol", related_name="points", on_delete=fields.CASCADE
    )
    patrol_id: int
    seq = fields.IntField()  # the phone's sequence number within the patrol
    t = fields.DatetimeField()  # device GNSS time
    lat = fields.FloatField()  # WGS-84
    lon = fields.FloatField()
    # As sent, when the phone used GCJ-02 or BD-09 (null when it sent WGS-84).
    orig_lat = fields.FloatField(null=True)
    orig_lon = fields.FloatField(null=True)
    crs = fields.CharField(max_length=8, default="WGS84")
    accuracy_m = fields.FloatField(null=True)
    speed_mps = fields.FloatField(null=True)
    mock = fields.BooleanField(default=False)
    # Quality flags with reasons ({"SPIKE": "jump in and out ..."}), null when the point is valid.
    flags: fields.JSONField[dict[str, str] | None] = fields.JSONField(null=True)

    class Meta:
        table = "track_points"
        unique_together = (("patrol", "seq"),)


class Observation(Model):
    id = fields.IntField(primary_key=True)
    client_id = fields.CharField(max_length=64)
    fingerprint = fields.CharField(max_length=64)
    patrol: fields.ForeignKeyRelation[Patrol] = fields.ForeignKeyField(
        "models.Patrol", related_name="observations", on_delete=fields.CASCADE
    )
    patrol_id: int
    category = fields.CharField(max_length=32)  # code from patrols/data/observation_categories.json
    note = fields.TextField(default="")
    lat = fields.FloatField()
    lon = fields.FloatField()
    observed_at = fields.DatetimeField()  # device time
    photo_ids: fields.JSONField[list[int]] = fields.JSONField(default=list)
    # Set when the observation was handed off as a case (reports owns the case).
    case_id = fields.IntField(null=True)
    case_reference = fields.CharField(max_length=32, null=True)
    escalated_at = fields.DatetimeField(null=True)
    # Set when the problem was handled on the spot (现场处理), proven by after-photos: found and
    # solved, no case. An observation is either handed off or handled on the spot, never both.
    handled_on_spot_at = fields.DatetimeField(null=True)
    after_photo_ids: fields.JSONField[list[int]] = fields.JSONField(default=list)
    handling_note = fields.TextField(default="")
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "patrol_observations"
        unique_together = (("patrol", "client_id"),)


class PatrolRuleRow(Model):
    """One patrol-frequency rule with its source. `definition` holds the rule as JSON
    (see `patrols.rules.rule_from_dict`), the columns select the rules that may apply."""

    id = fields.IntField(primary_key=True)
    code = fields.CharField(max_length=64, unique=True)
    region_code = fields.CharField(max_length=12, db_index=True)
    chief_level = fields.CharEnumField(ChiefLevel, max_length=16)
    chief_kind = fields.CharEnumField(ChiefKind, max_length=16)
    source = fields.TextField()
    definition: fields.JSONField[dict[str, Any]] = fields.JSONField()
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "patrol_rules"


class OfficeAssessmentMethodRow(Model):
    """The city's assessment method (patrols.assessment), stored by an admin; absent, the shipped
    method (patrols/data/office_assessment.json) applies. One row per scope; today only "city"."""

    id = fields.IntField(primary_key=True)
    scope = fields.CharField(max_length=32, unique=True)
    definition: fields.JSONField[dict[str, Any]] = fields.JSONField()
    updated_by: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "models.User", related_name=False, null=True, on_delete=fields.SET_NULL
    )
    updated_by_id: int | None
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "office_assessment_methods"
        table_description = "The assessment method an admin stored in place of the shipped one"
