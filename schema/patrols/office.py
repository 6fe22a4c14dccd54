"""The chief office's figures and assessment: the `officeFigures` query, the assessment method and
its replacement by an admin (patrols.office, patrols.assessment)."""

from __future__ import annotations

from datetime import date

import strawberry

from kernel.errors import invalid
from patrols import access, assessment, office
from patrols.rules import ChiefLevel, Period
from schema.context import Info
from schema.errors import UserError, payload_mutation
from schema.patrols.queries import viewer
from schema.patrols.types import PatrolAreaNode, _area


@strawberry.type(name="AssessmentMethodItem")
class AssessmentMethodItemType:
    metric: assessment.Metric
    direction: assessment.Direction = strawberry.field(description="AT_LEAST: more is better.")
    weight: float = strawberry.field(description="Points out of 100.")
    target: float = strawberry.field(description="A rate from 0 to 1.")
    source: str


@strawberry.type(
    name="AssessmentMethod", description="How the office scores its figures (考核), with sources."
)
class AssessmentMethodType:
    code: str
    name: str
    source: str
    items: list[AssessmentMethodItemType]

    @classmethod
    def of(cls, m: assessment.Method) -> AssessmentMethodType:
        items = [
            AssessmentMethodItemType(
                metric=i.metric, direction=i.direction, weight=i.weight, target=i.target, source=i.source
            )
            for i in m.items
        ]
        return cls(code=m.code, name=m.name, source=m.source, items=items)


@strawberry.type(name="AssessmentItemScore")
class AssessmentItemScoreType:
    metric: assessment.Metric
    value: float | None = strawberry.field(description="The metric's value; null when nothing to measure.")
    target: float
    weight: float
    score: float
    explanation: str


@strawberry.type(name="Assessment", description="A score out of 100, explained per item.")
class AssessmentType:
    method_code: str
    score: float
    items: list[AssessmentItemScoreType]

    @classmethod
    def of(cls, a: assessment.Assessment) -> AssessmentType:
        items = [
            AssessmentItemScoreType(
                metric=s.item.metric,
                value=s.value,
                target=s.item.target,
                weight=s.item.weight,
                score=s.score,
                explanation=s.explanation,
            )
            for s in a.items
        ]
        return cls(method_code=a.method_code, score=a.score, items=items)


@strawberry.type(description="The figures of one group (or of all, for the total) in the period.")
class OfficeFigureRow:
    area_id: strawberry.Private[int | None]
    region: str | None = strawberry.field(description="Set when grouped by REGION.")
    level: ChiefLevel | None = strawberry.field(
        description="Set when grouped by LEVEL; null for patrols of no one assigned there, or no chief."
    )
    areas: int
    patrols_required: int
    patrols_done: int = strawberry.field(description="Capped at the required count of each period.")
    patrol_rate: float | None = strawberry.field(description="巡河率 / 巡林率: done / required.")
    problems_found: int
    handed_off: int
    handled_on_spot: int
    closed: int
    closed_on_time: int
    solved: int = strawberry.field(description="Closed hand-offs plus problems handled on the spot.")
    closure_rate: float | None = strawberry.field(description="办结率: solved / (handed off + on the spot).")
    on_time_closure_rate: float | None = strawberry.field(description="Closed on time / handed off.")
    complaints: int = strawberry.field(description="Residents' cases created in the period in the areas.")
    assessment: AssessmentType

    @strawberry.field
    async def area(self, info: Info) -> PatrolAreaNode | None:
        return None if self.area_id is None else await _area(info, self.area_id)

    @classmethod
    def of(cls, r: office.FigureRow) -> OfficeFigureRow:
        f = r.figures
        return cls(
            area_id=r.area_id,
            region=r.region,
            level=r.level,
            areas=f.areas,
            patrols_required=f.patrols_required,
            patrols_done=f.patrols_done,
            patrol_rate=f.patrol_rate,
            problems_found=f.problems_found,
            handed_off=f.handed_off,
            handled_on_spot=f.handled_on_spot,
            closed=f.closed,
            closed_on_time=f.closed_on_time,
            solved=f.solved,
            closure_rate=f.closure_rate,
            on_time_closure_rate=f.on_time_closure_rate,
            complaints=f.complaints,
            assessment=AssessmentType.of(r.assessment),
        )


@strawberry.type
class OfficeFigures:
    period: str = strawberry.field(description="The period's label, e.g. 2026-Q2.")
    period_kind: Period
    first_day: date
    last_day: date
    method: AssessmentMethodType
    rows: list[OfficeFigureRow]
    total: OfficeFigureRow

    @classmethod
    def of(cls, r: office.OfficeReport) -> OfficeFigures:
        return cls(
            period=r.window.label,
            period_kind=r.period,
            first_day=r.window.first_day,
            last_day=r.window.last_day,
            method=AssessmentMethodType.of(r.method),
            rows=[OfficeFigureRow.of(row) for row in r.rows],
            total=OfficeFigureRow.of(r.total),
        )


@strawberry.type
class OfficeQuery:
    @strawberry.field(
        description="The chief office's figures for a 旬, month, quarter or year (period: 2026-05-D2, "
        "2026-05, 2026-Q2, 2026), for the areas whose division code starts with `region`, grouped by "
        "area, region (its first `regionDigits` digits) and/or level, each row assessed. For the "
        "river chief office and admins (all areas), and chiefs (their own areas and their subordinates')."
    )
    async def office_figures(
        self,
        info: Info,
        period: str,
        region: str | None = None,
        group_by: list[office.OfficeDimension] | None = None,
        region_digits: int | None = None,
    ) -> OfficeFigures:
        standing = await viewer(info)
        access.check_office_reader(info.context.principal, standing)
        report = await office.office_figures(
            standing,
            period,
            region=region,
            group_by=frozenset(group_by if group_by is not None else [office.OfficeDimension.AREA]),
            region_digits=region_digits,
        )
        return OfficeFigures.of(report)

    @strawberry.field(description="The assessment method in force: the city's, or the shipped default.")
    async def office_assessment_method(self, info: Info) -> AssessmentMethodType:
        access.check_office_reader(info.context.principal, await viewer(info))
        return AssessmentMethodType.of(await office.current_method())


@strawberry.input
class AssessmentMethodItemInput:
    metric: str = strawberry.field(
        description="PATROL_RATE, CLOSURE_RATE, ON_TIME_CLOSURE_RATE, HANDOFF_RATE or COMPLAINT_SHARE."
    )
    weight: float
    target: float = strawberry.field(description="A rate above 0 and at most 1.")
    source: str = ""


@strawberry.input
class OfficeAssessmentMethodSetInput:
    code: str
    name: str
    source: str = strawberry.field(description="Where the method comes from (the city's assessment rules).")
    items: list[AssessmentMethodItemInput] = strawberry.field(description="Weights add up to 100.")


@strawberry.input
class OfficeAssessmentMethodResetInput:
    confirm: bool = strawberry.field(description="true: go back to the shipped method.")


@strawberry.type
class OfficeAssessmentMethodPayload:
    method: AssessmentMethodType | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class OfficeMutation:
    @payload_mutation(
        "Replace the city's assessment method (admins). Checked whole: weights adding up to 100, known "
        "metrics, each once. Setting the same method again changes nothing."
    )
    async def office_assessment_method_set(
        self, info: Info, input: OfficeAssessmentMethodSetInput
    ) -> OfficeAssessmentMethodPayload:
        principal = info.context.principal
        access.check_method_manager(principal)
        assert principal is not None
        raw = {
            "code": input.code,
            "name": input.name,
            "source": input.source,
            "items": [
                {"metric": i.metric, "weight": i.weight, "target": i.target, "source": i.source}
                for i in input.items
            ],
        }
        method = await office.replace_method(raw, principal.user.id)
        return OfficeAssessmentMethodPayload(method=AssessmentMethodType.of(method))

    @payload_mutation("Go back to the shipped assessment method (admins).")
    async def office_assessment_method_reset(
        self, info: Info, input: OfficeAssessmentMethodResetInput
    ) -> OfficeAssessmentMethodPayload:
        access.check_method_manager(info.context.principal)
        if not input.confirm:
            raise invalid("Set confirm to true.", "input", "confirm")
        return OfficeAssessmentMethodPayload(method=AssessmentMethodType.of(await office.reset_method()))
