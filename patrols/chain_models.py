"""Reporting up the chain (上报) as stored: one row per problem a chief reported to the chief above,
with the order (交办) that gave it to a department. The case itself is reports' (`case_id`)."""

from __future__ import annotations

import enum

from tortoise import fields
from tortoise.models import Model

from identity.models import User
from patrols.models import Observation, PatrolArea
from patrols.rules import ChiefKind, ChiefLevel


class EscalationStatus(enum.StrEnum):
    REPORTED = "REPORTED"  # waiting for the chief above or the office to assign it
    ASSIGNED = "ASSIGNED"  # given to a department with a deadline; the case's status tells the rest


class Escalation(Model):
    """A problem a chief reported up to a chief above them (上报), and its assignment (交办).

    An observation or a case, for one area. One per sender and subject, so a retry finds the first."""

    id = fields.IntField(primary_key=True)
    # "observation:<id>" or "case:<id>": what was reported up, unique per sender.
    subject = fields.CharField(max_length=48)
    from_chief: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="escalations_sent", on_delete=fields.RESTRICT
    )
    from_chief_id: int
    to_chief: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="escalations_received", on_delete=fields.RESTRICT
    )
    to_chief_id: int
    area: fields.ForeignKeyRelation[PatrolArea] = fields.ForeignKeyField(
        "models.PatrolArea", related_name="escalations", on_delete=fields.RESTRICT
    )
    area_id: int
    # The sender's and the receiver's standing in the area when it was sent.
    from_level = fields.CharEnumField(ChiefLevel, max_length=16)
    from_kind = fields.CharEnumField(ChiefKind, max_length=16)
    to_level = fields.CharEnumField(ChiefLevel, max_length=16)
    observation: fields.ForeignKeyNullableRelation[Observation] = fields.ForeignKeyField(
        "models.Observation", related_name="escalations", null=True, on_delete=fields.SET_NULL
    )
    observation_id: int | None
    # The case (reports owns it): the one escalated, or the one the order opened.
    case_id = fields.IntField(null=True)
    case_reference = fields.CharField(max_length=32, null=True)
    note = fields.TextField(default="")
    status = fields.CharEnumField(EscalationStatus, max_length=16, default=EscalationStatus.REPORTED)
    department_id = fields.IntField(null=True)
    deadline = fields.DatetimeField(null=True)
    assigned_by: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="escalations_assigned", null=True, on_delete=fields.RESTRICT
    )
    assigned_by_id: int | None
    assigned_at = fields.DatetimeField(null=True)
    assignment_note = fields.TextField(default="")
    created_at = fields.DatetimeField()

    class Meta:
        table = "patrol_escalations"
        unique_together = (("from_chief", "subject"),)
        indexes = (("to_chief_id", "created_at"), ("area_id", "created_at"))
