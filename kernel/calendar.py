"""Working-time arithmetic for deadlines: office hours, weekends, public holidays and make-up workdays.

Chinese deadlines are counted in working hours (数字城管: "2 working hours") or working days (12345:
"5 working days"), and the national holiday plan moves weekend days into the week (调休). All of that is
configuration, loaded from a calendar file, so a deployment outside China sets its own.

A clock may also stop: `pauses` are intervals (e.g. while a case sits RETURNED) that do not count.
Every datetime in and out is timezone-aware; results are in UTC like `kernel.clock.now()`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from kernel.datafile import DataFileError, expect, only_keys, read_json, require, where

Interval = tuple[datetime, datetime]

# A calendar with no working time would make the search below run forever; ten years is plenty.
_MAX_DAYS = 3660


@dataclass(frozen=True, slots=True)
class WorkingCalendar:
    timezone: str = "Asia/Shanghai"
    hours: tuple[tuple[time, time], ...] = ((time(9), time(12)), (time(13, 30), time(18)))
    # Python weekdays: Monday is 0, so Saturday and Sunday are 5 and 6.
    weekend: frozenset[int] = frozenset({5, 6})
    holidays: frozenset[date] = frozenset()
    # Make-up workdays (调休): weekend dates that are worked; they win over `weekend`.
    workdays: frozenset[date] = frozenset()
    tz: ZoneInfo = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "tz", ZoneInfo(self.timezone))
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown timezone {self.timezone!r}") from None
        if not self.hours:
            raise ValueError("a calendar needs working hours")
        for (start, end), following in zip(self.hours, [*self.hours[1:], None], strict=True):
            if start >= end or (following is not None and following[0] < end):
                raise ValueError("working hours must be ascending, non-overlapping, start before end")
        if len(self.weekend) >= 7 or not self.weekend <= set(range(7)):
            raise ValueError("weekend must be a proper subset of weekdays 0-6")

    def is_working_day(self, day: date) -> bool:
        if day in self.workdays:
            return True
        return day not in self.holidays and day.weekday() not in self.weekend

    def working_hours_of(self, day: date) -> list[Interval]:
        if not self.is_working_day(day):
            return []
        return [
            (datetime.combine(day, start, self.tz), datetime.combine(day, end, self.tz))
            for start, end in self.hours
        ]

    def add_working_time(
        self,
        start: datetime,
        *,
        hours: float | None = None,
        working_days: int | None = None,
        pauses: Iterable[Interval] = (),
    ) -> datetime:
        """The moment `hours` of working time after `start`, or the end of the `working_days`-th
        working day after the day of `start` (the start day itself never counts, as in law).

        Paused working time is added on: the clock stops while paused.
        """
        _aware(start)
        if (hours is None) == (working_days is None):
            raise ValueError("give exactly one of hours or working_days")
        stops = merge_intervals(pauses)
        if hours is not None:
            return self._after_hours(start, timedelta(hours=hours), stops)
        assert working_days is not None
        if working_days < 0:
            raise ValueError("working_days must not be negative")
        if working_days == 0:
            return start.astimezone(UTC)
        first = start.astimezone(self.tz).date() + timedelta(days=1)
        due = self._end_of_nth_working_day(first, working_days)
        counted_from = datetime.combine(first, time(0), self.tz)
        full = self.working_time_between(counted_from, due)
        lost = full - self.working_time_between(counted_from, due, stops)
        return self._after_hours(due, lost, stops) if lost else due

    def working_time_between(self, a: datetime, b: datetime, pauses: Iterable[Interval] = ()) -> timedelta:
        """Working time from `a` to `b` outside `pauses`; negative when `b` is before `a`."""
        _aware(a)
        _aware(b)
        if b < a:
            return -self.working_time_between(b, a, pauses)
        total = timedelta()
        for seg_start, seg_end in self._free_segments(a, merge_intervals(pauses)):
            if seg_start >= b:
                break
            total += min(seg_end, b) - seg_start
        return total

    def _after_hours(self, start: datetime, amount: timedelta, stops: Sequence[Interval]) -> datetime:
        if amount < timedelta():
            raise ValueError("hours must not be negative")
        if not amount:
            return start.astimezone(UTC)
        left = amount
        for seg_start, seg_end in self._free_segments(start, stops):
            if seg_end - seg_start >= left:
                return (seg_start + left).astimezone(UTC)
            left -= seg_end - seg_start
        raise AssertionError("unreachable: _free_segments ends by raising")

    def _end_of_nth_working_day(self, first: date, n: int) -> datetime:
        day, seen = first, 0
        for _ in range(_MAX_DAYS):
            if self.is_working_day(day):
                seen += 1
                if seen == n:
                    return self.working_hours_of(day)[-1][1].astimezone(UTC)
            day += timedelta(days=1)
        raise ValueError("the calendar has no working days in ten years")

    def _free_segments(self, start: datetime, stops: Sequence[Interval]) -> Iterator[Interval]:
        """Working intervals from `start` on, with the pauses cut out, in time order."""
        day = start.astimezone(self.tz).date()
        for _ in range(_MAX_DAYS):
            for seg_start, seg_end in self.working_hours_of(day):
                if seg_end > start:
                    yield from subtract(max(seg_start, start), seg_end, stops)
            day += timedelta(days=1)
        raise ValueError("the calendar has no working time in ten years")


def merge_intervals(intervals: Iterable[Interval]) -> list[Interval]:
    """Sorted, non-overlapping copy; empty or inverted intervals are dropped."""
    merged: list[Interval] = []
    for start, end in sorted((_aware(s), _aware(e)) for s, e in intervals):
        if end <= start:
            continue
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def subtract(start: datetime, end: datetime, stops: Sequence[Interval]) -> Iterator[Interval]:
    """Pieces of [start, end) not covered by the sorted, merged `stops`."""
    cursor = start
    for stop_start, stop_end in stops:
        if stop_end <= cursor:
            continue
        if stop_start >= end:
            break
        if stop_start > cursor:
            yield cursor, stop_start
        cursor = max(cursor, stop_end)
    if cursor < end:
        yield cursor, end


def add_elapsed_time(start: datetime, amount: timedelta, pauses: Iterable[Interval] = ()) -> datetime:
    """Round-the-clock counterpart of `add_working_time`, for deadlines like "24 hours" or "30 days"."""
    _aware(start)
    if amount < timedelta():
        raise ValueError("amount must not be negative")
    cursor, left = start, amount
    for stop_start, stop_end in merge_intervals(pauses):
        if stop_end <= cursor:
            continue
        if stop_start - cursor >= left:
            break
        left -= max(stop_start - cursor, timedelta())
        cursor = max(cursor, stop_end)
    return (cursor + left).astimezone(UTC)


def elapsed_time_between(a: datetime, b: datetime, pauses: Iterable[Interval] = ()) -> timedelta:
    _aware(a)
    _aware(b)
    if b < a:
        return -elapsed_time_between(b, a, pauses)
    return sum((e - s for s, e in subtract(a, b, merge_intervals(pauses))), timedelta())


def _aware(moment: datetime) -> datetime:
    # A naive datetime would silently be read in the server's zone; refuse it instead.
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"datetime {moment} has no timezone")
    return moment


def load_calendar(source: str | Path = "calendar_cn.json") -> WorkingCalendar:
    """File format:

    {"timezone": "Asia/Shanghai", "hours": [["09:00", "12:00"], ["13:30", "18:00"]],
     "weekend": [6, 7],                        # ISO weekdays, Monday = 1
     "holidays": [{"name": "春节", "from": "2025-01-28", "to": "2025-02-04"}],   # inclusive ranges
     "workdays": [{"name": "春节调休", "date": "2025-01-26"}],
     "source": "where the holiday plan comes from"}
    """
    raw = expect(read_json(source), dict)
    only_keys(raw, ("timezone", "hours", "weekend", "holidays", "workdays", "source"))
    try:
        hours = tuple(
            (time.fromisoformat(expect(s, str, "hours", i)), time.fromisoformat(expect(e, str, "hours", i)))
            for i, (s, e) in enumerate(require(raw, "hours", list))
        )
        iso_weekend = require(raw, "weekend", list)
        weekend = frozenset(expect(d, int, "weekend", i) - 1 for i, d in enumerate(iso_weekend))
        return WorkingCalendar(
            timezone=require(raw, "timezone", str),
            hours=hours,
            weekend=weekend,
            holidays=frozenset(_holiday_dates(raw.get("holidays", []))),
            workdays=frozenset(_workday_dates(raw.get("workdays", []))),
        )
    except DataFileError:
        raise
    except (ValueError, TypeError) as exc:
        raise DataFileError(f"{source}: {exc}") from exc


def _holiday_dates(items: Any) -> Iterator[date]:
    for i, item in enumerate(expect(items, list, "holidays")):
        expect(item, dict, "holidays", i)
        only_keys(item, ("name", "from", "to"), "holidays", i)
        first = date.fromisoformat(require(item, "from", str, "holidays", i))
        last = date.fromisoformat(require(item, "to", str, "holidays", i))
        if last < first:
            raise DataFileError(f"{where('holidays', i)}: ends before it starts")
        yield from (first + timedelta(days=n) for n in range((last - first).days + 1))


def _workday_dates(items: Any) -> Iterator[date]:
    for i, item in enumerate(expect(items, list, "workdays")):
        expect(item, dict, "workdays", i)
        only_keys(item, ("name", "date"), "workdays", i)
        yield date.fromisoformat(require(item, "date", str, "workdays", i))
