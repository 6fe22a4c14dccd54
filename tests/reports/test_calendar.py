from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from reports.calendar import (
    WorkingCalendar,
    add_elapsed_time,
    elapsed_time_between,
    load_calendar,
    merge_intervals,
)
from reports.datafile import DataFileError

SH = ZoneInfo("Asia/Shanghai")
# 2025-05-09 is a Friday.
CAL = WorkingCalendar(
    holidays=frozenset({date(2025, 5, 12)}),  # Monday off
    workdays=frozenset({date(2025, 5, 17)}),  # Saturday worked (调休)
)


def sh(day: int, hour: int, minute: int = 0, month: int = 5) -> datetime:
    return datetime(2025, month, day, hour, minute, tzinfo=SH)


def test_hours_inside_one_day_skip_the_lunch_break() -> None:
    assert CAL.add_working_time(sh(13, 11), hours=2) == sh(13, 14, 30)


def test_hours_across_a_weekend_and_a_holiday() -> None:
    # Friday 17:00 + 2 h: 1 h on Friday, Saturday/Sunday off, Monday is a holiday, so Tuesday 10:00.
    assert CAL.add_working_time(sh(9, 17), hours=2) == sh(13, 10)


def test_make_up_saturday_is_worked() -> None:
    assert CAL.is_working_day(date(2025, 5, 17))
    assert not CAL.is_working_day(date(2025, 5, 18))
    # Friday 16 at 17:00 + 2 h: 1 h Friday, 1 h on the make-up Saturday.
    assert CAL.add_working_time(sh(16, 17), hours=2) == sh(17, 10)


def test_start_outside_working_hours_begins_at_next_opening() -> None:
    assert CAL.add_working_time(sh(10, 22), hours=1) == sh(13, 10)  # Saturday night -> Tuesday


def test_working_days_exclude_the_start_day_and_end_at_close() -> None:
    # Thursday 8th: Friday (1), Tuesday 13th (2) because Monday is a holiday.
    assert CAL.add_working_time(sh(8, 10), working_days=2) == sh(13, 18)
    assert CAL.add_working_time(sh(8, 10), working_days=0) == sh(8, 10)


def test_pauses_stop_the_clock() -> None:
    pause = [(sh(13, 9), sh(13, 11))]  # two working hours on Tuesday
    # 11:00-12:00 counts one hour, the other two run 13:30-15:30.
    assert CAL.add_working_time(sh(13, 9), hours=3, pauses=pause) == sh(13, 15, 30)
    # For working days the paused working time is added on after the normal due time.
    assert CAL.add_working_time(sh(9, 10), working_days=1, pauses=pause) == sh(14, 11)


def test_pause_on_the_uncounted_start_day_does_not_extend() -> None:
    assert CAL.add_working_time(sh(8, 10), working_days=1, pauses=[(sh(8, 10), sh(8, 12))]) == sh(9, 18)


def test_working_time_between() -> None:
    assert CAL.working_time_between(sh(9, 17), sh(13, 10)) == timedelta(hours=2)
    assert CAL.working_time_between(sh(13, 10), sh(9, 17)) == timedelta(hours=-2)
    assert CAL.working_time_between(sh(13, 9), sh(13, 18), [(sh(13, 10), sh(13, 11))]) == timedelta(hours=6.5)


def test_round_the_clock_time_with_pauses() -> None:
    assert add_elapsed_time(sh(9, 22), timedelta(hours=4)) == sh(10, 2)
    paused = [(sh(9, 23), sh(10, 1))]
    assert add_elapsed_time(sh(9, 22), timedelta(hours=4), paused) == sh(10, 4)
    assert elapsed_time_between(sh(9, 22), sh(10, 4), paused) == timedelta(hours=4)


def test_overlapping_pauses_are_merged() -> None:
    assert merge_intervals([(sh(9, 12), sh(9, 14)), (sh(9, 10), sh(9, 13))]) == [(sh(9, 10), sh(9, 14))]


def test_naive_datetimes_and_bad_calendars_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone"):
        CAL.add_working_time(datetime(2025, 5, 9, 10), hours=1)
    with pytest.raises(ValueError):
        WorkingCalendar(hours=((time(12), time(9)),))
    with pytest.raises(ValueError):
        WorkingCalendar(weekend=frozenset(range(7)))
    with pytest.raises(ValueError, match="exactly one"):
        CAL.add_working_time(sh(9, 10), hours=1, working_days=1)


def test_other_timezones_work() -> None:
    berlin_tz = ZoneInfo("Europe/Berlin")
    berlin = WorkingCalendar(timezone="Europe/Berlin", hours=((time(8), time(16)),))
    start = datetime(2025, 5, 9, 15, tzinfo=berlin_tz)
    assert berlin.add_working_time(start, hours=2) == datetime(2025, 5, 12, 9, tzinfo=berlin_tz)


def test_shipped_chinese_calendar_knows_spring_festival_2025() -> None:
    cn = load_calendar()
    assert not cn.is_working_day(date(2025, 1, 29))
    assert cn.is_working_day(date(2025, 1, 26))  # Sunday make-up day
    # Friday 2025-01-24 + 2 working days: Sunday 26th (make-up), Monday 27th.
    assert cn.add_working_time(datetime(2025, 1, 24, 10, tzinfo=SH), working_days=2) == datetime(
        2025, 1, 27, 18, tzinfo=SH
    )


def test_calendar_file_errors_are_reported(tmp_path) -> None:
    bad = tmp_path / "cal.json"
    bad.write_text('{"timezone": "Asia/Shanghai", "hours": [["09:00", "12:00"]], "weekend": [0]}')
    with pytest.raises(DataFileError):
        load_calendar(bad)
