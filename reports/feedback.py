"""Residents' word on a handled case: confirm (CLOSED) or dispute (REOPENED) go through
`reports.casework.transition`; the rating lives here. One rating per reporter and case: rating again
changes it, so a retried request never counts twice.
"""

from __future__ import annotations

from tortoise.exceptions import IntegrityError

from identity.models import User
from kernel import clock
from kernel.database import atomic
from kernel.errors import conflict, forbidden, invalid
from reports import access, casework
from reports.casework import INPUT
from reports.lifecycle import Status
from reports.models import CaseFeedback

RATEABLE = (Status.RESOLVED, Status.VERIFIED, Status.CLOSED)
MAX_COMMENT = 2000


async def rate_case(user: User, case_id: int, rating: int, comment: str | None) -> CaseFeedback:
    case, reporter = await access.case_for(user, case_id, *INPUT, "caseId")
    if not reporter:
        raise forbidden("Only the residents who reported this case may rate it.")
    if case.status not in RATEABLE:
        raise conflict(f"The case is {case.status}; it can be rated once it is resolved.", *INPUT, "caseId")
    if not 1 <= rating <= 5:
        raise invalid("Rate from 1 to 5.", *INPUT, "rating")
    text = (comment or "").strip()
    if len(text) > MAX_COMMENT:
        raise invalid(f"At most {MAX_COMMENT} characters.", *INPUT, "comment")
    now = clock.now()
    for _ in range(2):  # a concurrent first rating by the same reporter: the loser updates instead
        try:
            async with atomic():
                row = await CaseFeedback.get_or_none(case_id=case.id, reporter_id=user.id)
                if row is not None and (row.rating, row.comment) == (rating, text):
                    return row  # a retry: nothing changes and nothing is recorded twice
                if row is None:
                    row = await CaseFeedback.create(
                        case_id=case.id,
                        reporter_id=user.id,
                        rating=rating,
                        comment=text,
                        created_at=now,
                        updated_at=now,
                    )
                else:
                    row.rating, row.comment, row.updated_at = rating, text, now
                    await row.save(update_fields=["rating", "comment", "updated_at"])
                await casework.record(case, user, "rated", rating=rating)
                return row
        except IntegrityError:
            continue
    raise conflict("Rating changed meanwhile; please try again.", *INPUT, "rating")
