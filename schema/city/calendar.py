"""The city's working calendar: public years of holidays and make-up workdays (调休); admins add or
replace a year (kernel.city validates and stores it)."""

from __future__ import annotations

from datetime import date

import strawberry

from identity.models import Role
from kernel import city
from kernel.city import YearPlan, plan_of
from schema.context import Info
from schema.errors import UserError, payload_mutation


@strawberry.type(description="Days off of a public holiday, both ends included.")
class CalendarHoliday:
    name: str
    from_: date = strawberry.field(name="from")
    to: date


@strawberry.type(description="A weekend day that is worked (调休).")
class CalendarWorkday:
    name: str
    date: date


@strawberry.type(description="One calendar year's holiday plan, as the city counts working days with it.")
class CalendarYear:
    year: int
    holidays: list[CalendarHoliday]
    workdays: list[CalendarWorkday]
    source: str = strawberry.field(description="Where the plan comes from (the notice).")
    stored: bool = strawberry.field(
        description="True when an admin stored the year through the API; false when it ships with the server."
    )

    @classmethod
    def of(cls, plan: YearPlan) -> CalendarYear:
        return cls(
            year=plan.year,
            holidays=[CalendarHoliday(name=h.name, from_=h.first, to=h.last) for h in plan.holidays],
            workdays=[CalendarWorkday(name=w.name, date=w.day) for w in plan.workdays],
            source=plan.source,
            stored=plan.stored,
        )


@strawberry.type(description="The city's configuration that clients need: timezone, locale, calendar.")
class CityCalendar:
    timezone: str
    locale: str
    years: list[int] = strawberry.field(description="The years the calendar holds holidays for.")

    @strawberry.field(description="One year's plan; null when the calendar has no plan for it.")
    def year(self, year: int) -> CalendarYear | None:
        plan = city.current().plans.get(year)
        return None if plan is None else CalendarYear.of(plan)

    @strawberry.field(description="Whether the local date is a working day (weekends, holidays, 调休).")
    def is_working_day(self, date: date) -> bool:
        return city.current().calendar.is_working_day(date)


@strawberry.input
class CalendarHolidayInput:
    name: str
    from_: date = strawberry.field(name="from")
    to: date


@strawberry.input
class CalendarWorkdayInput:
    name: str
    date: date


@strawberry.input
class CalendarYearSetInput:
    year: int
    holidays: list[CalendarHolidayInput]
    workdays: list[CalendarWorkdayInput]
    source: str
    replace: bool = strawberry.field(
        default=False, description="Replace a year the calendar already has (shipped or stored)."
    )


@strawberry.type
class CalendarYearPayload:
    calendar_year: CalendarYear | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class CityQuery:
    @strawberry.field(description="The city's timezone, locale and working calendar. Public.")
    def city_calendar(self) -> CityCalendar:
        here = city.current()
        return CityCalendar(timezone=here.timezone, locale=here.locale, years=here.years())


@strawberry.type
class CityMutation:
    @payload_mutation(
        "Add a year's holidays and make-up workdays to the city's calendar, or replace one (replace: true). "
        "Admins only. Sending the same year again answers it unchanged."
    )
    async def calendar_year_set(self, info: Info, input: CalendarYearSetInput) -> CalendarYearPayload:
        admin = info.context.require_role(Role.ADMIN).user
        plan = plan_of(
            input.year,
            [(h.name, h.from_, h.to) for h in input.holidays],
            [(w.name, w.date) for w in input.workdays],
            input.source,
        )
        stored = await city.set_year(plan, replace=input.replace, actor_id=admin.id)
        return CalendarYearPayload(calendar_year=CalendarYear.of(stored))
