"""Handing an observation off as a case, routed like a resident's report.

The contract patrols needs from `reports` (reports never imports patrols):

    reports.intake.open_case(
        *, source: str,                  # "PATROL"
        reporter_id: int,                # the chief's user id (they follow the case as its reporter)
        category_code: str,              # a reports category code, e.g. "water.floating_rubbish"
        lat: float, lon: float,          # WGS-84
        description: str,
        photo_ids: Sequence[int],        # already claimed by the chief (media.service.claim_photos)
        client_id: str,                  # idempotency key: the same key returns the same case
        occurred_at: datetime,
        extra: Mapping[str, Any],        # {"patrol_id", "observation_id", "area_code", "chief_id"}
    ) -> Case                            # with .id (int), .reference (str), .status, .department_id

It opens a Case (routing by category and location, SLA, event log) in the caller's transaction or its
own, and raises DomainError for what it refuses. Until the reports branch provides it, escalation
answers UNAVAILABLE; tests install a stand-in with `set_case_opener`.
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from tortoise.transactions import in_transaction

from identity.models import User
from kernel import clock
from kernel.errors import DomainError, ErrorCode, not_found
from patrols.catalog import observation_categories
from patrols.models import Observation, Patrol, PatrolArea

CASE_SOURCE = "PATROL"


class OpenedCase(Protocol):
    id: int
    reference: str


CaseOpener = Callable[..., Awaitable[OpenedCase]]
_opener: CaseOpener | None = None


def set_case_opener(opener: CaseOpener | None) -> None:
    """Use `opener` instead of `reports.intake.open_case` (tests, until reports provides it)."""
    global _opener
    _opener = opener


def case_opener() -> CaseOpener:
    if _opener is not None:
        return _opener
    try:
        return importlib.import_module("reports.intake").open_case  # type: ignore[no-any-return]
    except (ImportError, AttributeError):
        raise DomainError(
            ErrorCode.UNAVAILABLE, "Handing observations off as cases is not available yet."
        ) from None


async def escalate(user: User, observation_id: int) -> Observation:
    """Open a case for one of the caller's observations; asking again returns the same case."""
    observation = await Observation.filter(id=observation_id, patrol__chief_id=user.id).first()
    if observation is None:
        raise not_found("observation", "input", "observationId")
    if observation.case_id is not None:
        return observation
    patrol = await Patrol.get(id=observation.patrol_id)
    area = await PatrolArea.get(id=patrol.area_id)
    category = observation_categories()[observation.category]
    open_case = case_opener()
    async with in_transaction():
        case = await open_case(
            source=CASE_SOURCE,
            reporter_id=user.id,
            category_code=category.case_category,
            lat=observation.lat,
            lon=observation.lon,
            description=_description(category.name_zh, category.name_en, area, observation.note),
            photo_ids=list(observation.photo_ids),
            client_id=f"patrol-observation-{observation.id}",
            occurred_at=observation.observed_at,
            extra=_extra(patrol, area, observation),
        )
        observation.case_id = case.id
        observation.case_reference = case.reference
        observation.escalated_at = clock.now()
        await observation.save(update_fields=["case_id", "case_reference", "escalated_at"])
    return observation


def _description(name_zh: str, name_en: str, area: PatrolArea, note: str) -> str:
    found = f"巡查发现 {name_zh} / Found on patrol: {name_en} — {area.name} ({area.code})"
    return f"{found}\n{note}" if note else found


def _extra(patrol: Patrol, area: PatrolArea, observation: Observation) -> dict[str, Any]:
    return {
        "patrol_id": patrol.id,
        "observation_id": observation.id,
        "area_code": area.code,
        "chief_id": patrol.counted_for_id,
        "recorded_by_id": patrol.chief_id,
    }
