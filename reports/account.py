"""A resident's reports as their account sees them (identity.rights): export, erase on deletion, move on
recovery.

- Export: the resident's own reports, each with its case's reference and status and the case's timeline
  as reporters see it (kind, statuses, time: no names, no notes), and their own ratings. Other
  reporters' reports on the same case are not included.
- Erase: the reports stay in their cases (so counts and statistics stay the same) but become anonymous
  without contact consent: staff see only the per-case pseudonym, nothing that links the cases. A
  rating keeps its number and loses its comment.
- Move: the reports, ratings and the resident's own case events go to the recovered account; a case
  both accounts reported counts its reporters again.
"""

from __future__ import annotations

from typing import Any

from identity.rights import AccountPart
from reports.models import Case, CaseEvent, CaseFeedback, Category, Report
from reports.reads import events_of_cases

_CLIENT_ID_LENGTH = 64


async def export(user_id: int) -> dict[str, Any]:
    reports = await Report.filter(reporter_id=user_id).order_by("id")
    case_ids = sorted({r.case_id for r in reports})
    cases = {c.id: c for c in await Case.filter(id__in=case_ids)}
    categories = dict(
        await Category.filter(id__in={r.category_id for r in reports}).values_list("id", "code")
    )
    timelines = dict(zip(case_ids, await events_of_cases(case_ids), strict=True))
    feedback = await CaseFeedback.filter(reporter_id=user_id).order_by("id")
    return {
        "reports": [
            {
                "id": r.id,
                "clientId": r.client_id,
                "category": categories.get(r.category_id),
                "description": r.description,
                "latitude": r.latitude,
                "longitude": r.longitude,
                "originalLatitude": r.original_latitude,
                "originalLongitude": r.original_longitude,
                "crs": r.crs.value,
                "accuracyM": r.accuracy_m,
                "observedAt": r.observed_at.isoformat(),
                "createdAt": r.created_at.isoformat(),
                "evidence": r.evidence,
                "photoIds": r.photo_ids,
                "anonymous": r.anonymous,
                "contactConsent": r.contact_consent,
                "case": {
                    "reference": cases[r.case_id].reference,
                    "status": cases[r.case_id].status.value,
                },
            }
            for r in reports
        ],
        "cases": [
            {
                "reference": cases[case_id].reference,
                "status": cases[case_id].status.value,
                "timeline": [
                    {
                        "kind": e.kind,
                        "fromStatus": e.from_status.value if e.from_status else None,
                        "toStatus": e.to_status.value if e.to_status else None,
                        "at": e.created_at.isoformat(),
                    }
                    for e in timelines[case_id]
                ],
            }
            for case_id in case_ids
        ],
        "ratings": [
            {
                "case": cases[f.case_id].reference if f.case_id in cases else None,
                "rating": f.rating,
                "comment": f.comment,
                "at": f.updated_at.isoformat(),
            }
            for f in feedback
        ],
    }


async def erase(user_id: int) -> None:
    await Report.filter(reporter_id=user_id).update(anonymous=True, contact_consent=False)
    await CaseFeedback.filter(reporter_id=user_id).update(comment="")


async def move(from_user_id: int, to_user_id: int) -> None:
    moving = await Report.filter(reporter_id=from_user_id)
    if not moving:
        return
    # A client id is unique per reporter: one the recovered account already used gets a suffix.
    clashing = Report.filter(reporter_id=to_user_id, client_id__in=[r.client_id for r in moving])
    taken = {client_id for (client_id,) in await clashing.values_list("client_id")}
    for report in moving:
        if report.client_id in taken:
            suffix = f"~{report.id}"
            client_id = report.client_id[: _CLIENT_ID_LENGTH - len(suffix)] + suffix
            await Report.filter(id=report.id).update(client_id=client_id)
    await Report.filter(reporter_id=from_user_id).update(reporter_id=to_user_id)
    # The resident's own events (submit, "me too", confirm, rating...) are theirs on either account.
    await CaseEvent.filter(actor_id=from_user_id).update(actor_id=to_user_id)
    rated = set(await CaseFeedback.filter(reporter_id=to_user_id).values_list("case_id", flat=True))
    # One rating per reporter and case: where both accounts rated, the recovered account's stays.
    await (
        CaseFeedback.filter(reporter_id=from_user_id)
        .exclude(case_id__in=list(rated))
        .update(reporter_id=to_user_id)
    )
    for case_id in sorted({r.case_id for r in moving}):
        reporters = set(await Report.filter(case_id=case_id).values_list("reporter_id", flat=True))
        await Case.filter(id=case_id).update(reporter_count=len(reporters))


PART = AccountPart(export=export, erase=erase, move=move)
