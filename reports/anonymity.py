"""How the case's staff see its reporters: by a pseudonym per case, never by account on anonymous reports.

Each reporter of a case is "reporter N", numbered by the order of their first report in the case. The
number says nothing outside the case: the same resident is "reporter 1" on one case and "reporter 3"
on another, so pseudonyms cannot link cases. A reporter who filed any report of the case anonymously
is anonymous on that whole case: staff see no account id of theirs there (not on their events
either). A merge brings the merged case's reporters along, so their numbers may change then.
"""

from __future__ import annotations

from collections.abc import Sequence

from identity import audit
from identity.models import AccessRecord, Role, User
from identity.service import Principal
from kernel.errors import forbidden, not_found
from reports.models import Report


def reporter_labels(reports: Sequence[Report]) -> dict[int, str]:
    """Each reporter's pseudonym on the case whose reports (any order) these are."""
    labels: dict[int, str] = {}
    for report in sorted(reports, key=lambda r: r.id):
        if report.reporter_id not in labels:
            labels[report.reporter_id] = f"reporter {len(labels) + 1}"
    return labels


def anonymous_reporters(reports: Sequence[Report]) -> set[int]:
    """The reporters who filed anonymously on the case whose reports these are."""
    return {r.reporter_id for r in reports if r.anonymous}


async def reveal_reporter(principal: Principal, report_id: int, reason: str) -> tuple[User, AccessRecord]:
    """Who filed a report, for an admin who gives the reason; the reveal is in the access log.

    Anyone but an admin is FORBIDDEN; no reason is INVALID; a missing report is NOT_FOUND.
    """
    if principal.role != Role.ADMIN:
        raise forbidden("Only administrators may reveal a reporter.")
    audit.check_reason(reason)
    report = await Report.get_or_none(id=report_id)
    if report is None:
        raise not_found("report", "input", "reportId")
    record = await audit.record_reveal(principal, "report", report.id, reason)
    return await User.get(id=report.reporter_id), record
