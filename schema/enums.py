"""Every enum of the API: the domain's own enums, given their GraphQL names and descriptions once.

`strawberry.enum` marks the domain class itself, so fields are annotated with the domain enum
(`status: Status`) and type checkers see the real type. Imported by `schema` before any type.
"""

from __future__ import annotations

import strawberry

from delivery.models import DeliveryStatus
from exports.models import ExportFormat, ExportKind, ExportStatus
from identity.models import AccessKind, Role
from kernel.errors import ErrorCode
from kernel.geo import CoordinateSystem
from notifications.models import Language
from patrols.assessment import Direction, Metric
from patrols.models import PatrolStatus
from patrols.office import OfficeDimension
from patrols.rules import AreaKind, ChiefKind, ChiefLevel, CountScope, Period
from patrols.track import AuthenticityFlag, PatrolMode, PointFlag
from reports.lifecycle import Action, Status
from reports.models import CategoryGroup, ExtensionStatus, Priority, RuleScope
from reports.queue import QueueOrder
from reports.sla import DeadlineState
from reports.statistics import Dimension

strawberry.enum(
    AccessKind, name="AccessKind", description="What kind of personal data a recorded read was of."
)
strawberry.enum(Language, name="NotificationLanguage", description="ZH_CN: zh-CN (the default). EN: en.")
strawberry.enum(PatrolMode, name="PatrolMode")
strawberry.enum(PatrolStatus, name="PatrolStatus")
strawberry.enum(AreaKind, name="PatrolAreaKind")
strawberry.enum(ChiefLevel, name="ChiefLevel")
strawberry.enum(ChiefKind, name="ChiefKind")
strawberry.enum(AuthenticityFlag, name="AuthenticityFlag")
strawberry.enum(PointFlag, name="TrackPointFlag")
strawberry.enum(Period, name="PatrolPeriod", description="DEKAD is the 旬: days 1-10, 11-20, 21-end.")
strawberry.enum(CountScope, name="PatrolCountScope")
strawberry.enum(OfficeDimension, name="OfficeDimension", description="How the office figures are grouped.")
strawberry.enum(Metric, name="AssessmentMetric", description="What an assessment item scores (rates 0-1).")
strawberry.enum(Direction, name="AssessmentDirection")
strawberry.enum(
    CoordinateSystem,
    name="CoordinateSystem",
    description="WGS84: GPS. GCJ02: AMap, Tencent and WeChat maps. BD09: Baidu maps.",
)
strawberry.enum(Status, name="CaseStatus")
strawberry.enum(Action, name="CaseAction", description="A step in a case's lifecycle.")
strawberry.enum(CategoryGroup, name="CategoryGroup")
strawberry.enum(Priority, name="Priority")
strawberry.enum(RuleScope, name="RoutingRuleScope")
strawberry.enum(
    DeadlineState,
    name="DeadlineState",
    description="Against the deadline running now (response, then resolution).",
)
strawberry.enum(ExtensionStatus, name="ExtensionStatus")
strawberry.enum(QueueOrder, name="CaseQueueOrder", description="How a queue is sorted.")
strawberry.enum(Dimension, name="StatisticsDimension", description="What statistics rows are grouped by.")
strawberry.enum(Role, name="Role")
strawberry.enum(ExportKind, name="ExportKind", description="CASES, STATISTICS tables, patrol COMPLIANCE.")
strawberry.enum(ExportFormat, name="ExportFormat", description="CSV is UTF-8 with a byte order mark (Excel).")
strawberry.enum(ExportStatus, name="ExportStatus")
strawberry.enum(
    DeliveryStatus,
    name="DeliveryStatus",
    description="PENDING: waiting for its next attempt. DEAD: given up (an admin may replay it). "
    "CANCELLED: its target was disabled or removed first.",
)
strawberry.enum(ErrorCode, name="UserErrorCode", description="Why a mutation was refused.")
