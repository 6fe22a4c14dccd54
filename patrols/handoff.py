"""Handing an observation off as a case, routed like a resident's report, or recording that it was
handled on the spot (现场处理).

The chief becomes the case's reporter (so they follow it to closure in `myReports`); the report says
it came from a patrol and records the patrol, observation, area and the chief it counts for. Every
observation kind can be handed off: a kind no department handles at that point goes to the triage
queue of the chief office (河长办 for rivers and lakes, 林长办 for forests) instead of failing.

An observation is OPEN, HANDED_OFF (a case) or HANDLED_ON_SPOT (found and solved, after-photos as
proof); the last two exclude each other. Social supervisors (民间河长) may handle their own findings
on the spot but not hand off as a chief.
"""

from __future__ import annotations

from typing import Any

from identity.models import Role, User
from kernel import clock, outbox
from kernel.database import atomic
from kernel.errors import conflict, forbidden, invalid, not_found
from kernel.idempotency import fingerprint
from media.service import claim_photos
from patrols.access import FOREST_CHIEF_OFFICE, RIVER_CHIEF_OFFICE
from patrols.catalog import observation_categories
from patrols.models import Observation, Patrol, PatrolArea
from patrols.rules import AreaKind
from reports.models import ReportSource
from reports.service import Location, Submission, submit_report
from reports.store import Snapshot


async def escalate(user: User, observation_id: int, routing: Snapshot) -> Observation:
    """Open a case for one of the caller's observations; asking again returns the same case."""
    if user.role == Role.VOLUNTEER:
        raise forbidden(
            "Social supervisors (民间河长) cannot hand off to a department as a chief does; the chief"
            " office sees your observations and hands them off."
        )
    observation = await Observation.filter(id=observation_id, patrol__chief_id=user.id).first()
    if observation is None:
        raise not_found("observation", "input", "observationId")
    if observation.case_id is not None:
        return observation
    if observation.handled_on_spot_at is not None:
        raise conflict("This observation was handled on the spot; there is nothing to hand off.", "input")
    patrol = await Patrol.get(id=observation.patrol_id)
    area = await PatrolArea.get(id=patrol.area_id)
    category = observation_categories()[observation.category]
    submission = Submission(
        client_id=f"patrol-observation-{observation.id}",
        category_code=category.case_category_for(area.kind),
        location=Location(observation.lat, observation.lon),
        description=_description(category.name_zh, category.name_en, area, observation.note),
        observed_at=observation.observed_at,
        photo_ids=list(observation.photo_ids),
        source=ReportSource.PATROL,
        origin=_origin(patrol, area, observation),
        triage_office_kind=office_kind(area.kind),
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


def office_kind(area_kind: AreaKind) -> str:
    """The chief office whose triage takes what no department handles: 林长办 for forests, else 河长办."""
    return FOREST_CHIEF_OFFICE if area_kind is AreaKind.FOREST_AREA else RIVER_CHIEF_OFFICE


MAX_HANDLING_NOTE = 2_000


async def handle_on_spot(
    user: User, observation_id: int, *, after_photo_ids: list[int], note: str
) -> Observation:
    """Record that the recorder of the patrol solved the problem on the spot, with after-photos.

    Retry-safe: the same photos and note again answer the same observation; anything else once it
    is recorded is a CONFLICT. Nothing is stored unless every photo is the caller's own.
    """
    note = note.strip()
    if not after_photo_ids:
        raise invalid("Add at least one photo taken after the problem was handled.", "input", "afterPhotoIds")
    if len(note) > MAX_HANDLING_NOTE:
        raise invalid(f"note is at most {MAX_HANDLING_NOTE} characters.", "input", "note")
    wanted = fingerprint({"photos": list(after_photo_ids), "note": note})
    if not await Observation.exists(id=observation_id, patrol__chief_id=user.id):
        raise not_found("observation", "input", "observationId")
    async with atomic():
        # Locked while deciding: of two racing calls the second sees the first's answer.
        observation = await Observation.filter(id=observation_id).select_for_update().get()
        if observation.handled_on_spot_at is not None:
            done = fingerprint({"photos": observation.after_photo_ids, "note": observation.handling_note})
            if done == wanted:
                return observation
            raise conflict("This observation was already recorded as handled on the spot.", "input")
        if observation.case_id is not None:
            raise conflict(
                f"This observation was handed off as case {observation.case_reference}; follow it there.",
                "input",
            )
        if set(after_photo_ids) & set(observation.photo_ids):
            raise invalid(
                "After-photos must be new photos, not those of the finding.", "input", "afterPhotoIds"
            )
        await claim_photos(user.id, after_photo_ids, field=["input", "afterPhotoIds"])
        observation.handled_on_spot_at = clock.now()
        observation.after_photo_ids = list(after_photo_ids)
        observation.handling_note = note
        await observation.save(update_fields=["handled_on_spot_at", "after_photo_ids", "handling_note"])
        patrol = await Patrol.get(id=observation.patrol_id)
        handled = outbox.change(
            "observation_handled_on_spot",
            "observation",
            observation.id,
            [],
            clock.now(),
            patrol=patrol.id,
            by_volunteer=patrol.by_volunteer,
        )
        await outbox.emit(handled)
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
