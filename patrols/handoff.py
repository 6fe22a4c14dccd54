"""Handing an observation off as a case, routed like a resident's report.

The chief becomes the case's reporter (so they follow it to closure in `myReports`); the report says
it came from a patrol and records the patrol, observation, area and the chief it counts for.
"""

from __future__ import annotations

from typing import Any

from identity.models import User
from kernel import clock, outbox
from kernel.database import atomic
from kernel.errors import not_found
from patrols.catalog import observation_categories
from patrols.models import Observation, Patrol, PatrolArea
from reports.models import ReportSource
from reports.service import Location, Submission, submit_report
from reports.store import Snapshot


async def escalate(user: User, observation_id: int, routing: Snapshot) -> Observation:
    """Open a case for one of the caller's observations; asking again returns the same case."""
    observation = await Observation.filter(id=observation_id, patrol__chief_id=user.id).first()
    if observation is None:
        raise not_found("observation", "input", "observationId")
    if observation.case_id is not None:
        return observation
    patrol = await Patrol.get(id=observation.patrol_id)
    area = await PatrolArea.get(id=patrol.area_id)
    category = observation_categories()[observation.category]
    submission = Submission(
        client_id=f"patrol-observation-{observation.id}",
        category_code=category.case_category,
        location=Location(observation.lat, observation.lon),
        description=_description(category.name_zh, category.name_en, area, observation.note),
        observed_at=observation.observed_at,
        photo_ids=list(observation.photo_ids),
        source=ReportSource.PATROL,
        origin=_origin(patrol, area, observation),
    )
    async with atomic():
        # Officials handing off findings are not held to the residents' submission rate.
        case = (await submit_report(routing, user, submission, per_hour_limit=None)).case
        observation.case_id = case.id
        observation.case_reference = case.reference
        observation.escalated_at = clock.now()
        await observation.save(update_fields=["case_id", "case_reference", "escalated_at"])
        handed_off = outbox.change(
            "observation_handed_off",
            "observation",
            observation.id,
            [],
            clock.now(),
            case=case.id,
            patrol=patrol.id,
        )
        await outbox.emit(handed_off)
    return observation


def _description(name_zh: str, name_en: str, area: PatrolArea, note: str) -> str:
    found = f"巡查发现 {name_zh} / Found on patrol: {name_en} — {area.name} ({area.code})"
    return f"{found}\n{note}" if note else found


def _origin(patrol: Patrol, area: PatrolArea, observation: Observation) -> dict[str, Any]:
    return {
        "patrol_id": patrol.id,
        "observation_id": observation.id,
        "area_code": area.code,
        "chief_id": patrol.counted_for_id,
        "recorded_by_id": patrol.chief_id,
    }
