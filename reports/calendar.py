"""Working-time arithmetic for deadlines: kept in `kernel.calendar` (the city's working calendar, shared
with patrols), re-exported here where the reports domain has always found it."""

from __future__ import annotations

from kernel.calendar import (
    Interval,
    WorkingCalendar,
    add_elapsed_time,
    elapsed_time_between,
    load_calendar,
    merge_intervals,
    subtract,
)

__all__ = [
    "Interval",
    "WorkingCalendar",
    "add_elapsed_time",
    "elapsed_time_between",
    "load_calendar",
    "merge_intervals",
    "subtract",
]
