"""Who may export what. Each table follows the access rules of the domain it comes from:

- cases: what the reader's queue access allows (reports.access.queue_department): staff their own
  department's cases, dispatchers and admins any department's or every case;
- statistics: as the statistics query (reports.access.statistics_department);
- patrol compliance: the chiefs the reader may assess (patrols.access.Viewer): a chief themselves and
  those they supervise, overseers (admins, the river chief office) everyone; others nothing.
Residents export nothing. An export, its progress and its file are its owner's only: anyone else's
answers exactly like a missing one.

A service account's key with `export:read` (it acts as its own account) exports cases only, at a
dispatcher's reach (every department's, or one department's), without the personal columns: no
assignee, no summary (the resident's words), and the place at the public location (a grid-cell centre
for home-related categories). Statistics and compliance are for people. A key without the scope, or
one revoked since the export started, exports nothing.

Personal data: a case export carries no reporter (only how many there are) and no phone number; the
assignee's name is in it because every reader of a case export is staff of those cases. A compliance
export names the chiefs the reader may assess, as the compliance query does.
"""

from __future__ import annotations

from collections.abc import Sequence

from tortoise.queryset import QuerySet

from exports.models import ExportJob, ExportKind, ExportStatus
from identity.models import Role, User
from identity.service import Principal
from identity.service_accounts import EXPORT_READ, key_has_scope
from kernel.errors import DomainError, ErrorCode, forbidden, invalid, not_found
from patrols.access import Viewer
from reports import access as reports_access
from reports.models import Department
from reports.queue import Scope

FIELD = ("input",)


def refuse_residents(user: User) -> None:
    if user.role is Role.CITIZEN:
        raise forbidden("Exports are for staff, dispatchers, chiefs and administrators.")


def is_key(principal: Principal) -> bool:
    """A service account's key rather than a person: it reads the public-safe case table only."""
    return principal.scopes is not None


def require_reader(principal: Principal | None) -> Principal:
    """The caller, if they may export at all; UNAUTHENTICATED for nobody, FORBIDDEN otherwise."""
    if principal is None:
        raise DomainError(ErrorCode.UNAUTHENTICATED, "Sign in first.")
    if is_key(principal):
        if not key_has_scope(principal, EXPORT_READ):
            raise forbidden(f"This API key lacks the scope {EXPORT_READ}.")
    else:
        refuse_residents(principal.user)
    return principal


async def key_case_scope(principal: Principal, kind: ExportKind, department_id: int | None) -> Scope | None:
    """The cases a key may export (dispatcher-level: None is every department's)."""
    require_reader(principal)
    if kind is not ExportKind.CASES:
        raise forbidden("An API key exports cases only; statistics and compliance are for people.")
    if department_id is not None and not await Department.exists(id=department_id):
        raise not_found("department", *FIELD, "cases", "departmentId")
    return None if department_id is None else Scope(department_id)


async def case_scope(user: User, department_id: int | None) -> Scope | None:
    """The cases `user` may export when asking for `department_id`'s (None: every case they may see);
    the answer None means every department's."""
    refuse_residents(user)
    if department_id is None:
        if user.role in reports_access.OFFICE:
            return None
        if user.role is Role.STAFF and user.department_id is not None:
            department_id = user.department_id
        else:
            raise forbidden("Case exports are for staff, dispatchers and administrators.")
    return Scope(await reports_access.queue_department(user, department_id))


def statistics_department(user: User, department_id: int | None) -> int | None:
    refuse_residents(user)
    return reports_access.statistics_department(user, department_id)


def check_compliance_reader(user: User, viewer: Viewer) -> None:
    """Compliance is for chiefs (their own and those they supervise) and overseers."""
    if not (viewer.overseer or user.role is Role.CHIEF):
        raise forbidden("Patrol compliance is for chiefs and the river chief office.")


def check_kind(kind: ExportKind, geojson: bool) -> None:
    if geojson and kind is not ExportKind.CASES:
        raise invalid("GeoJSON needs a location on every row: only cases have one.", *FIELD, "format")


def own_jobs(principal: Principal, status: ExportStatus | None = None) -> QuerySet[ExportJob]:
    """The caller's exports (a key's: those it started), optionally in one status."""
    jobs = ExportJob.filter(owner_id=principal.user.id)
    return jobs if status is None else jobs.filter(status=status)


def visible_jobs(principal: Principal | None, rows: Sequence[ExportJob]) -> list[ExportJob]:
    if principal is None:
        return []
    return [row for row in rows if row.owner_id == principal.user.id]
