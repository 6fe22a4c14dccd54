"""Reporting up the chain (上报) and assigning to a department (交办).

- A chief reports an observation of one of their patrols, or a case they can see (one they handed
  off, or a resident's case in their areas), up to a chief above them for the area: a chief whose
  assignment in force today is at a higher level, on an area whose division code covers this area's,
  and of a kind that commands the sender's (`patrols.access.Viewer.supervises`, the same rule that
  lets supervisors see tracks). Without a named chief the nearest level above is chosen. A sender
  reports a subject once: asking again returns the first report.
- The chief it was reported to, any other chief above the sender, or the chief office (河长办: staff
  of a `river_chief_office` department whose jurisdiction covers the area; admins too) assigns it to
  a department with a deadline. That is a case in reports, given to the department by an order
  (`reports.orders`): an observation not yet handed off becomes a case reported by its chief; an
  existing case is re-routed. Assigning again with the same department and deadline changes nothing.
- The sender and the chiefs above follow it (`followed`): the row and its case's status.

Each change is one transaction with its outbox rows (`escalation_reported`, `escalation_assigned`),
heard on the receiving chief's and the sender's channels (`chief:<user id>`), so notifications and
webhooks learn of it. Case steps after that are announced by reports as usual.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from tortoise.exceptions import IntegrityError
from tortoise.expressions import Q
from tortoise.queryset import QuerySet

from identity.models import Role, User
from identity.service import Principal
from kernel import clock, outbox
from kernel.database import atomic
from kernel.errors import conflict, forbidden, invalid, not_found
from patrols import area_cases
from patrols.access import LEVEL_RANK, RIVER_CHIEF_OFFICE, commands_kind, region_prefix
from patrols.catalog import observation_categories
from patrols.chain_models import Escalation, EscalationStatus
from patrols.models import ChiefAssignment, Observation, Patrol, PatrolArea
from patrols.recording import local_date
from patrols.rules import ChiefKind, ChiefLevel
from reports.models import Case, Department, ReportSource
from reports.orders import Order, apply_order, open_on_order
from reports.service import Location, Submission
from reports.store import Snapshot

INPUT = ("input",)
MAX_NOTE = 2000
MAX_DEADLINE = timedelta(days=366)
REPORTED = "escalation_reported"
ASSIGNED = "escalation_assigned"


def chief_channel(user_id: int) -> str:
    return f"chief:{user_id}"


@dataclass(frozen=True, slots=True)
class Standing:
    """A chief's assignment in force: (level, kind) on an area of division `region`."""

    chief_id: int
    level: ChiefLevel
    kind: ChiefKind
    region: str

    def above(self, other: Standing) -> bool:
        """Whether this standing commands `other` (higher level, covering region, commanding kind)."""
        return (
            LEVEL_RANK[self.level] < LEVEL_RANK[other.level]
            and other.region.startswith(region_prefix(self.region))
            and commands_kind(self.kind, other.kind)
        )


def _in_force(today: date) -> Q:
    return Q(valid_from__lte=today) & (Q(valid_to=None) | Q(valid_to__gte=today))


async def _standings(today: date, **filters: object) -> list[Standing]:
    rows = await ChiefAssignment.filter(_in_force(today), **filters).values_list(
        "chief_id", "level", "kind", "area__admin_region"
    )
    return [Standing(c, ChiefLevel(lv), ChiefKind(k), r) for c, lv, k, r in rows]


async def _sender_standing(user: User, area: PatrolArea, today: date) -> Standing:
    mine = await _standings(today, chief_id=user.id, area_id=area.id)
    if not mine:
        raise forbidden("You hold no assignment in force on this area; only its chiefs report up.")
    return min(mine, key=lambda s: LEVEL_RANK[s.level])  # the highest of them


def _text(value: str | None, name: str) -> str:
    text = (value or "").strip()
    if len(text) > MAX_NOTE:
        raise invalid(f"At most {MAX_NOTE} characters.", *INPUT, name)
    return text


# --- 上报 -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Subject:
    key: str
    area: PatrolArea
    observation: Observation | None
    case: Case | None


async def _observation_subject(user: User, observation_id: int) -> Subject:
    observation = await Observation.filter(
        Q(patrol__chief_id=user.id) | Q(patrol__counted_for_id=user.id), id=observation_id
    ).first()
    if observation is None:
        raise not_found("observation", *INPUT, "observationId")
    patrol = await Patrol.get(id=observation.patrol_id)
    area = await PatrolArea.get(id=patrol.area_id)
    case = await Case.get_or_none(id=observation.case_id) if observation.case_id else None
    return Subject(f"observation:{observation.id}", area, observation, case)


async def _case_subject(principal: Principal, case_id: int, today: date, buffer_m: float) -> Subject:
    """A case the chief handed off (its area is the patrol's) or a resident case in their areas."""
    user = principal.user
    handed = await Observation.filter(
        Q(patrol__chief_id=user.id) | Q(patrol__counted_for_id=user.id), case_id=case_id
    ).first()
    if handed is not None:
        found = await _observation_subject(user, handed.id)
        return Subject(f"case:{case_id}", found.area, handed, found.case)
    areas = await area_cases.chief_areas(principal, today)
    case = await Case.get_or_none(id=case_id)
    if case is not None:
        for area in areas:
            if case_id in await area_cases.case_ids_in(area, buffer_m):
                return Subject(f"case:{case_id}", area, None, case)
    raise not_found("case", *INPUT, "caseId")


async def _receiver(sender: Standing, area: PatrolArea, to_chief_id: int | None, today: date) -> Standing:
    if to_chief_id is not None:
        theirs = [s for s in await _standings(today, chief_id=to_chief_id) if s.above(sender)]
        if not theirs:
            raise invalid("That chief is not above you for this area.", *INPUT, "toChiefId")
        return min(theirs, key=lambda s: -LEVEL_RANK[s.level])  # the nearest of their standings
    higher = [lv for lv in ChiefLevel if LEVEL_RANK[lv] < LEVEL_RANK[sender.level]]
    candidates = [s for s in await _standings(today, level__in=higher) if s.above(sender)]
    if not candidates:
        raise conflict("No chief is above you for this area; ask the chief office.", *INPUT, "toChiefId")
    # The nearest level above; among equals the chief of this very area first, then the earliest.
    holders = ChiefAssignment.filter(_in_force(today), area_id=area.id).values_list("chief_id")
    on_area = {chief_id for (chief_id,) in await holders}
    return min(candidates, key=lambda s: (-LEVEL_RANK[s.level], s.chief_id not in on_area, s.chief_id))


async def escalate(
    principal: Principal,
    *,
    observation_id: int | None = None,
    case_id: int | None = None,
    to_chief_id: int | None = None,
    note: str | None = None,
    buffer_m: float = area_cases.DEFAULT_RIVER_BUFFER_M,
) -> Escalation:
    """Report an observation or a case up to a chief above; a retry returns the first report."""
    user = principal.user
    if principal.role is not Role.CHIEF:
        raise forbidden("Only chiefs report up the chain.")
    if (observation_id is None) == (case_id is None):
        raise invalid("Give exactly one of observationId or caseId.", *INPUT, "observationId")
    text = _text(note, "note")
    today = local_date(clock.now())
    if observation_id is not None:
        subject = await _observation_subject(user, observation_id)
    else:
        assert case_id is not None
        subject = await _case_subject(principal, case_id, today, buffer_m)
    existing = await Escalation.get_or_none(from_chief_id=user.id, subject=subject.key)
    if existing is not None:
        return _same_report(existing, to_chief_id)
    sender = await _sender_standing(user, subject.area, today)
    receiver = await _receiver(sender, subject.area, to_chief_id, today)
    if receiver.chief_id == user.id:
        raise invalid("You cannot report up to yourself.", *INPUT, "toChiefId")
    now = clock.now()
    try:
        async with atomic():
            row = await Escalation.create(
                subject=subject.key,
                from_chief_id=user.id,
                to_chief_id=receiver.chief_id,
                area_id=subject.area.id,
                from_level=sender.level,
                from_kind=sender.kind,
                to_level=receiver.level,
                observation_id=subject.observation.id if subject.observation else None,
                case_id=subject.case.id if subject.case else None,
                case_reference=subject.case.reference if subject.case else None,
                note=text,
                created_at=now,
            )
            await outbox.emit(_announcement(REPORTED, row, subject.area.code, now))
    except IntegrityError:
        # The same report sent twice at once: the first one committed.
        return _same_report(await Escalation.get(from_chief_id=user.id, subject=subject.key), to_chief_id)
    return row


def _same_report(existing: Escalation, to_chief_id: int | None) -> Escalation:
    if to_chief_id is not None and to_chief_id != existing.to_chief_id:
        raise conflict("You already reported this up to another chief.", *INPUT, "toChiefId")
    return existing


def _announcement(kind: str, row: Escalation, area_code: str, at: datetime) -> outbox.OutboxEvent:
    channels = sorted({chief_channel(row.to_chief_id), chief_channel(row.from_chief_id)})
    return outbox.change(
        kind,
        "escalation",
        row.id,
        channels,
        at,
        area=row.area_id,
        area_code=area_code,
        case=row.case_id,
        case_reference=row.case_reference,
        from_chief=row.from_chief_id,
        to_chief=row.to_chief_id,
        actor=row.assigned_by_id if kind == ASSIGNED else row.from_chief_id,
        department=row.department_id,
        deadline=row.deadline.isoformat() if row.deadline else None,
        status=row.status.value,
    )


# --- who may see and assign -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Follower:
    """The caller's standing for the escalations: their chief assignments and the offices they staff."""

    user_id: int
    admin: bool
    standings: tuple[Standing, ...]
    office_prefixes: tuple[str, ...]

    @classmethod
    async def load(cls, principal: Principal, today: date) -> Follower:
        user = principal.user
        standings: tuple[Standing, ...] = ()
        offices: tuple[str, ...] = ()
        if principal.role is Role.CHIEF:
            standings = tuple(await _standings(today, chief_id=user.id))
        if principal.role is Role.STAFF and user.department_id is not None:
            codes = Department.filter(id=user.department_id, kind=RIVER_CHIEF_OFFICE).values_list(
                "jurisdiction__code"
            )
            offices = tuple(region_prefix(code) for (code,) in await codes if code)
        return cls(user.id, principal.role is Role.ADMIN, standings, offices)

    def office_for(self, region: str) -> bool:
        return self.admin or any(region.startswith(prefix) for prefix in self.office_prefixes)

    def above_sender(self, row: Escalation, region: str) -> bool:
        sender = Standing(row.from_chief_id, row.from_level, row.from_kind, region)
        return any(mine.above(sender) for mine in self.standings)

    def may_assign(self, row: Escalation, region: str) -> bool:
        return self.user_id == row.to_chief_id or self.above_sender(row, region) or self.office_for(region)

    def sees(self, row: Escalation, region: str) -> bool:
        return self.user_id == row.from_chief_id or self.may_assign(row, region)

    def followed(self, status: EscalationStatus | None = None) -> QuerySet[Escalation]:
        """The escalations the caller follows: sent, received, their subordinates', their office's."""
        rows = self._followed()
        return rows if status is None else rows.filter(status=status)

    def _followed(self) -> QuerySet[Escalation]:
        if self.admin:
            return Escalation.all()
        condition = Q(from_chief_id=self.user_id) | Q(to_chief_id=self.user_id)
        for mine in self.standings:
            below = [lv for lv in ChiefLevel if LEVEL_RANK[lv] > LEVEL_RANK[mine.level]]
            kinds = [k for k in ChiefKind if commands_kind(mine.kind, k)]
            if below:
                condition |= Q(
                    area__admin_region__startswith=region_prefix(mine.region),
                    from_level__in=below,
                    from_kind__in=kinds,
                )
        for prefix in self.office_prefixes:
            condition |= Q(area__admin_region__startswith=prefix)
        return Escalation.filter(condition)


async def follower_of(principal: Principal | None) -> Follower:
    if principal is None:
        raise forbidden("Sign in first.")
    return await Follower.load(principal, local_date(clock.now()))


async def visible_escalations(principal: Principal | None, rows: list[Escalation]) -> list[Escalation]:
    if principal is None or not rows:
        return []
    follower = await follower_of(principal)
    regions = dict(
        await PatrolArea.filter(id__in={r.area_id for r in rows}).values_list("id", "admin_region")
    )
    return [r for r in rows if follower.sees(r, regions[r.area_id])]


# --- 交办 -----------------------------------------------------------------------------------------


async def assign(
    principal: Principal,
    snapshot: Snapshot,
    escalation_id: int,
    *,
    department_code: str,
    deadline: datetime,
    note: str | None = None,
) -> Escalation:
    """Give a reported problem to a department with a deadline (a case in reports)."""
    row = await Escalation.get_or_none(id=escalation_id)
    if row is None:
        raise not_found("escalation", *INPUT, "escalationId")
    area = await PatrolArea.get(id=row.area_id)
    follower = await follower_of(principal)
    if not follower.sees(row, area.admin_region):
        raise not_found("escalation", *INPUT, "escalationId")
    if not follower.may_assign(row, area.admin_region):
        raise forbidden("Only the chief it was reported to, a chief above, or the chief office assigns it.")
    now = clock.now()
    if deadline.tzinfo is None:
        raise invalid("Give the deadline with a time zone.", *INPUT, "deadline")
    if deadline <= now:
        raise invalid("The deadline must be in the future.", *INPUT, "deadline")
    if deadline > now + MAX_DEADLINE:
        raise invalid("The deadline must be within a year.", *INPUT, "deadline")
    department_id = snapshot.department_ids.get(department_code or "")
    if department_id is None:
        raise invalid("No such department.", *INPUT, "departmentCode")
    text = _text(note, "note")
    if row.status is EscalationStatus.ASSIGNED:
        if row.department_id == department_id and row.deadline == deadline:
            return row  # a retry
        raise conflict("This was already assigned; follow its case.", *INPUT, "escalationId")
    order = Order(department_code, deadline, principal.user, text)
    async with atomic():
        claimed = await Escalation.filter(id=row.id, status=EscalationStatus.REPORTED).update(
            status=EscalationStatus.ASSIGNED
        )
        if not claimed:
            raise conflict("Someone assigned this meanwhile; reload it.", *INPUT, "escalationId")
        case = await _ordered_case(snapshot, row, area, order, department_id)
        row.status = EscalationStatus.ASSIGNED
        row.case_id, row.case_reference = case.id, case.reference
        row.department_id, row.deadline = department_id, deadline
        row.assigned_by_id, row.assigned_at, row.assignment_note = principal.user.id, now, text
        await row.save(
            update_fields=[
                "case_id",
                "case_reference",
                "department_id",
                "deadline",
                "assigned_by_id",
                "assigned_at",
                "assignment_note",
            ]
        )
        await outbox.emit(_announcement(ASSIGNED, row, area.code, now))
    return row


async def _ordered_case(
    snapshot: Snapshot, row: Escalation, area: PatrolArea, order: Order, department_id: int
) -> Case:
    if row.case_id is not None:
        return await apply_order(row.case_id, department_id, order)
    observation = await Observation.get_or_none(id=row.observation_id) if row.observation_id else None
    if observation is None:
        raise conflict("The observation reported up no longer exists.", *INPUT, "escalationId")
    if observation.case_id is not None:  # handed off meanwhile: order that case
        return await apply_order(observation.case_id, department_id, order)
    patrol = await Patrol.get(id=observation.patrol_id)
    reporter = await User.get(id=patrol.chief_id)
    category = observation_categories()[observation.category]
    sub = Submission(
        client_id=f"patrol-observation-{observation.id}",
        category_code=category.case_category,
        location=Location(observation.lat, observation.lon),
        description=_description(category.name_zh, category.name_en, area, observation.note),
        observed_at=observation.observed_at,
        photo_ids=list(observation.photo_ids),
        source=ReportSource.PATROL,
        origin={
            "patrol_id": patrol.id,
            "observation_id": observation.id,
            "area_code": area.code,
            "chief_id": patrol.counted_for_id,
            "recorded_by_id": patrol.chief_id,
            "escalation_id": row.id,
        },
    )
    case = await open_on_order(snapshot, reporter, sub, order)
    observation.case_id, observation.case_reference = case.id, case.reference
    observation.escalated_at = clock.now()
    await observation.save(update_fields=["case_id", "case_reference", "escalated_at"])
    return case


async def case_of(row: Escalation) -> Case | None:
    return await Case.get_or_none(id=row.case_id) if row.case_id else None


def _description(name_zh: str, name_en: str, area: PatrolArea, note: str) -> str:
    found = f"巡查发现，上报交办 {name_zh} / Found on patrol, reported up and assigned: {name_en}"
    found = f"{found} — {area.name} ({area.code})"
    return f"{found}\n{note}" if note else found
