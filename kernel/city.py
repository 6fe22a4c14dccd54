"""The one city configuration: timezone, working calendar (holidays and make-up workdays, 调休), locale.

The server builds it once at start (`configure`) from the shipped calendar file (or the city's own,
`CITY_CALENDAR`) and its settings, then overlays the years an admin stored through the API
(`CalendarYear` rows, shared by every process: each one re-reads them with `refresh`, at start, every
`CITY_CALENDAR_REFRESH_SECONDS` and right after a change it made). Reports (deadlines, statistics)
and patrols (local dates, `WORKING_DAY` periods) read `current()`; no domain keeps a timezone of its own.

A calendar year holds every holiday date and make-up workday that falls in it; a holiday that spans
New Year is entered in both years, each part in its own.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from tortoise import fields
from tortoise.models import Model

from kernel.calendar import WorkingCalendar, load_calendar
from kernel.database import atomic
from kernel.datafile import expect, read_json
from kernel.errors import DomainError, DomainErrors, conflict, invalid

DEFAULT_CALENDAR = "calendar_cn.json"
DEFAULT_LOCALE = "zh-CN"
FIRST_YEAR, LAST_YEAR = 1949, 2200
MAX_NAME = 64
MAX_SOURCE = 2_000
MAX_ENTRIES = 60


class CalendarYear(Model):
    """A calendar year an admin stored: it replaces the shipped year of the same number, if any."""

    year = fields.IntField(primary_key=True, generated=False)
    holidays: fields.JSONField[list[dict[str, str]]] = fields.JSONField()  # [{"name", "from", "to"}]
    workdays: fields.JSONField[list[dict[str, str]]] = fields.JSONField()  # [{"name", "date"}]
    source = fields.TextField()
    updated_by_id = fields.IntField(null=True)  # the admin's account (no foreign key: kernel names no one)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "city_calendar_years"


@dataclass(frozen=True, slots=True)
class HolidaySpan:
    name: str
    first: date
    last: date  # inclusive

    def dates(self) -> Iterable[date]:
        return (self.first + timedelta(days=n) for n in range((self.last - self.first).days + 1))


@dataclass(frozen=True, slots=True)
class MakeupWorkday:
    name: str
    day: date


@dataclass(frozen=True, slots=True)
class YearPlan:
    """One year's holiday plan, as a notice publishes it."""

    year: int
    holidays: tuple[HolidaySpan, ...]
    workdays: tuple[MakeupWorkday, ...]
    source: str
    stored: bool = False  # True: an admin's year from the database; False: shipped with the calendar file

    def holiday_dates(self) -> set[date]:
        return {d for span in self.holidays for d in span.dates()}

    def workday_dates(self) -> set[date]:
        return {w.day for w in self.workdays}

    def same_plan(self, other: YearPlan) -> bool:
        return (self.holidays, self.workdays, self.source) == (other.holidays, other.workdays, other.source)

    def as_json(self) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
        return (
            [{"name": h.name, "from": h.first.isoformat(), "to": h.last.isoformat()} for h in self.holidays],
            [{"name": w.name, "date": w.day.isoformat()} for w in self.workdays],
        )


@dataclass(frozen=True, slots=True)
class City:
    """The city's configuration. `calendar` is the effective working calendar (shipped years with the
    admin's years laid over them); `base` keeps the hours and weekend without any holidays."""

    base: WorkingCalendar
    plans: Mapping[int, YearPlan]
    locale: str = DEFAULT_LOCALE
    calendar: WorkingCalendar = dataclasses.field(init=False, compare=False)

    def __post_init__(self) -> None:
        holidays = frozenset(d for p in self.plans.values() for d in p.holiday_dates())
        workdays = frozenset(d for p in self.plans.values() for d in p.workday_dates())
        object.__setattr__(
            self, "calendar", dataclasses.replace(self.base, holidays=holidays, workdays=workdays)
        )

    @property
    def timezone(self) -> str:
        return self.base.timezone

    @property
    def tz(self) -> ZoneInfo:
        return self.base.tz

    def local_date(self, moment: datetime) -> date:
        return moment.astimezone(self.tz).date()

    def start_of(self, day: date) -> datetime:
        """The first moment of the local date `day`, aware."""
        return datetime.combine(day, time(), self.tz)

    @property
    def holidays(self) -> frozenset[date]:
        return self.calendar.holidays

    @property
    def workdays(self) -> frozenset[date]:
        return self.calendar.workdays

    def years(self) -> list[int]:
        return sorted(self.plans)

    def with_stored(self, stored: Iterable[YearPlan]) -> City:
        """This city with the admin's years laid over the shipped ones (`shipped` keeps the file's)."""
        plans = {y: p for y, p in self.plans.items() if not p.stored}
        plans.update({p.year: p for p in stored})
        return dataclasses.replace(self, plans=plans)


def _plans_from_file(source: str | Path) -> dict[int, YearPlan]:
    raw = expect(read_json(source), dict)
    text = str(raw.get("source", ""))
    holidays: dict[int, list[HolidaySpan]] = {}
    workdays: dict[int, list[MakeupWorkday]] = {}
    for item in raw.get("holidays", []):
        first, last = date.fromisoformat(item["from"]), date.fromisoformat(item["to"])
        # A file may let a span run over New Year; a year plan keeps each year's part.
        for year in range(first.year, last.year + 1):
            part = HolidaySpan(item["name"], max(first, date(year, 1, 1)), min(last, date(year, 12, 31)))
            holidays.setdefault(year, []).append(part)
    for item in raw.get("workdays", []):
        day = date.fromisoformat(item["date"])
        workdays.setdefault(day.year, []).append(MakeupWorkday(item["name"], day))
    return {
        year: YearPlan(
            year,
            tuple(sorted(holidays.get(year, []), key=lambda h: h.first)),
            tuple(sorted(workdays.get(year, []), key=lambda w: w.day)),
            text,
        )
        for year in sorted({*holidays, *workdays})
    }


def load_city(calendar: str | Path = DEFAULT_CALENDAR, locale: str = DEFAULT_LOCALE) -> City:
    """The city from a calendar file (`kernel.calendar.load_calendar` validates its format)."""
    full = load_calendar(calendar)
    base = dataclasses.replace(full, holidays=frozenset(), workdays=frozenset())
    return City(base=base, plans=_plans_from_file(calendar), locale=locale)


_city: City | None = None


def configure(city: City | None) -> None:
    """Install the city (the server, once at start); `None` goes back to the shipped default."""
    global _city
    _city = city


def current() -> City:
    global _city
    if _city is None:
        _city = load_city()
    return _city


# --- the admin's years ------------------------------------------------------------------------------


def _plan_from_row(row: CalendarYear) -> YearPlan:
    return YearPlan(
        row.year,
        tuple(
            HolidaySpan(h["name"], date.fromisoformat(h["from"]), date.fromisoformat(h["to"]))
            for h in row.holidays
        ),
        tuple(MakeupWorkday(w["name"], date.fromisoformat(w["date"])) for w in row.workdays),
        row.source,
        stored=True,
    )


async def refresh() -> City:
    """Re-read the stored years (a handful of rows) and install the result; returns it."""
    city = current().with_stored(_plan_from_row(r) for r in await CalendarYear.all())
    configure(city)
    return city


def check_plan(plan: YearPlan, weekend: frozenset[int]) -> list[DomainError]:
    """Every problem of a year plan on its own: dates outside the year, holidays that overlap, a
    make-up workday that is not a weekend day or is also a holiday."""
    errors: list[DomainError] = []
    year = plan.year
    if not FIRST_YEAR <= year <= LAST_YEAR:
        return [invalid(f"year must be between {FIRST_YEAR} and {LAST_YEAR}.", "input", "year")]
    if not plan.source.strip() or len(plan.source) > MAX_SOURCE:
        errors.append(
            invalid(f"Say where the plan comes from (1-{MAX_SOURCE} characters).", "input", "source")
        )
    if len(plan.holidays) > MAX_ENTRIES or len(plan.workdays) > MAX_ENTRIES:
        errors.append(invalid(f"At most {MAX_ENTRIES} holidays and {MAX_ENTRIES} workdays a year.", "input"))
        return errors
    seen: dict[date, int] = {}
    for i, span in enumerate(plan.holidays):
        at = ("input", "holidays", str(i))
        if not span.name.strip() or len(span.name) > MAX_NAME:
            errors.append(invalid(f"A holiday needs a name of 1-{MAX_NAME} characters.", *at, "name"))
        if span.last < span.first:
            errors.append(invalid("The holiday ends before it starts.", *at, "to"))
            continue
        if span.first.year != year or span.last.year != year:
            errors.append(
                invalid(
                    f"{span.first}..{span.last} is not inside {year}: give each year its own part.",
                    *at,
                )
            )
            continue
        for day in span.dates():
            if day in seen:
                errors.append(invalid(f"{day} is already in holiday {seen[day]}.", *at))
                break
            seen[day] = i
    workdays: set[date] = set()
    for i, work in enumerate(plan.workdays):
        at = ("input", "workdays", str(i))
        if not work.name.strip() or len(work.name) > MAX_NAME:
            errors.append(invalid(f"A make-up workday needs a name of 1-{MAX_NAME} characters.", *at, "name"))
        if work.day.year != year:
            errors.append(invalid(f"{work.day} is not in {year}.", *at, "date"))
        elif work.day in seen:
            errors.append(conflict(f"{work.day} is both a holiday and a make-up workday.", *at, "date"))
        elif work.day.weekday() not in weekend:
            errors.append(
                invalid(f"{work.day} is a weekday: a make-up workday moves a weekend day.", *at, "date")
            )
        elif work.day in workdays:
            errors.append(invalid(f"{work.day} is listed twice.", *at, "date"))
        workdays.add(work.day)
    return errors


def plan_of(
    year: int, holidays: Sequence[tuple[str, date, date]], workdays: Sequence[tuple[str, date]], source: str
) -> YearPlan:
    return YearPlan(
        year,
        tuple(
            sorted((HolidaySpan(n.strip(), a, b) for n, a, b in holidays), key=lambda h: (h.first, h.last))
        ),
        tuple(sorted((MakeupWorkday(n.strip(), d) for n, d in workdays), key=lambda w: w.day)),
        source.strip(),
        stored=True,
    )


async def set_year(plan: YearPlan, *, replace: bool, actor_id: int | None) -> YearPlan:
    """Store an admin's plan for a year. A year the city already has (shipped or stored) is replaced
    only when `replace` says so; sending the same plan again answers it unchanged (a retry)."""
    city = current()
    errors = check_plan(plan, city.base.weekend)
    if errors:
        raise DomainErrors(errors)
    async with atomic():
        row = await CalendarYear.select_for_update().get_or_none(year=plan.year)
        existing = _plan_from_row(row) if row is not None else city.plans.get(plan.year)
        if existing is not None and existing.stored and existing.same_plan(plan):
            return existing
        if existing is not None and not replace:
            raise conflict(
                f"The calendar already has {plan.year}; send replace: true to replace it.", "input", "replace"
            )
        holidays, workdays = plan.as_json()
        values: dict[str, Any] = {
            "holidays": holidays,
            "workdays": workdays,
            "source": plan.source,
            "updated_by_id": actor_id,
        }
        if row is None:
            await CalendarYear.create(year=plan.year, **values)
        else:
            await row.update_from_dict(values).save()
    await refresh()
    return plan
