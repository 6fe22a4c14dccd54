"""Before a patrol rule's period ends, tell each chief who is still short of patrols, once per period.

A periodic job (`sweep_patrol_shortfall`, run by the server like the deadline pass): for every period
kind the rules use, the period containing today (city time); when it ends within `days_before` days,
the chiefs' verdicts over that whole period, and for each (chief, rule) still missing patrols one
outbox row `patrol_shortfall` (subject `patrol_rule`) that the notification planner turns into the
chief's message. A row already written for the same chief, rule and period is not written again.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from kernel import city, outbox
from kernel.database import atomic
from kernel.outbox import OutboxEvent
from patrols.access import Viewer
from patrols.compliance import compliance, load_rules
from patrols.models import PatrolRuleRow
from patrols.rules import PeriodWindow, split_periods

KIND = "patrol_shortfall"
SUBJECT = "patrol_rule"
EVERYONE = Viewer(None, True, ())  # the job assesses every chief, as an overseer would


async def sweep_patrol_shortfall(now: datetime, days_before: int) -> int:
    """Write the shortfall rows due at `now`; returns how many were written."""
    today = city.current().local_date(now)
    written = 0
    for period in sorted({rule.period for rule in await load_rules()}):
        here = city.current()
        windows = split_periods(period, today, today, here.holidays, here.workdays)
        if not windows or (windows[0].last_day - today).days > days_before:
            continue
        window = windows[0]
        verdicts = [
            v
            for v in await compliance(EVERYONE, window.first_day, window.last_day)
            if v.rule.period is period
        ]
        for verdict in verdicts:
            current = [p for p in verdict.verdict.periods if p.label == window.label and p.missing > 0]
            if not current:
                continue
            required = sum(p.required for p in current)
            done = sum(min(p.done, p.required) for p in current)
            written += await _announce(verdict.chief_id, verdict.rule.code, window, done, required, now)
    return written


async def _announce(
    chief_id: int, rule_code: str, window: PeriodWindow, done: int, required: int, now: datetime
) -> int:
    first_day, last_day, label = window.first_day, window.last_day, window.label
    since = city.current().start_of(first_day).astimezone(UTC) - timedelta(days=1)
    async with atomic():
        # Locking the rule's row (PostgreSQL) makes processes sweeping at once take turns here, so the
        # second sees the first's row; SQLite runs one process by design.
        rule_row = await PatrolRuleRow.filter(code=rule_code).select_for_update().first()
        if rule_row is None:
            return 0
        earlier = await OutboxEvent.filter(
            kind=KIND, subject=SUBJECT, subject_id=rule_row.id, created_at__gte=since
        ).values_list("data")
        if any(d.get("chief") == chief_id and d.get("period") == label for (d,) in earlier):
            return 0
        await outbox.emit(
            outbox.change(
                KIND,
                SUBJECT,
                rule_row.id,
                [],
                now,
                chief=chief_id,
                rule=rule_code,
                period=label,
                last_day=last_day.isoformat(),
                done=done,
                required=required,
            )
        )
    return 1
