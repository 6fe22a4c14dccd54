from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields
from tortoise.indexes import Index

# Statistics read plain columns of case_events instead of the JSON `data` and the case: the category,
# whether a response or resolution was made by its due time, and a resolution's handling time. Existing
# events get them from their `data` and their case's current category (the log does not say which
# category a case had before a correction); the covering index is built after that backfill. The
# append-only guard (0007) then covers the new columns too. Each counted event also gets when its case last
# had an event of the same figure (reports.lifecycle.CASE_COUNTS as of this migration), anywhere and in
# its department: counting the period's events whose prior is before the period counts distinct cases.
# The covering index replaces (kind, created_at), its prefix, and (department_id, kind, created_at), which
# SQLite's planner preferred to it.
_RESPONDED = "kind IN ('accept', 'return', 'resolve')"
_PG_BACKFILL = f"""
UPDATE case_events e SET
    category_id = c.category_id,
    on_time = CASE WHEN e.{_RESPONDED} THEN e.created_at <= (e.data->>'due')::timestamptz END,
    handling_seconds = CASE WHEN e.kind = 'resolve'
        THEN EXTRACT(EPOCH FROM e.created_at - (e.data->>'dispatched')::timestamptz) END
FROM cases c WHERE c.id = e.case_id
"""
_SQLITE_BACKFILL = f"""
UPDATE case_events SET
    category_id = (SELECT c.category_id FROM cases c WHERE c.id = case_events.case_id),
    on_time = CASE WHEN {_RESPONDED}
        THEN julianday(created_at) <= julianday(json_extract(data, '$.due')) END,
    handling_seconds = CASE WHEN kind = 'resolve'
        THEN (julianday(created_at) - julianday(json_extract(data, '$.dispatched'))) * 86400.0 END
"""
_FIGURE = (
    "CASE WHEN kind IN ('route', 'reroute') THEN 'received' WHEN kind IN ('confirm', 'auto_close')"
    " THEN 'closed' ELSE kind END"
)
_PRIORS = f"""
UPDATE case_events SET prior_at = p.prior_at, prior_in_department_at = p.prior_in_department_at FROM (
    SELECT id,
        LAG(created_at) OVER (PARTITION BY case_id, {_FIGURE} ORDER BY id) AS prior_at,
        LAG(created_at) OVER (PARTITION BY case_id, department_id, {_FIGURE} ORDER BY id)
            AS prior_in_department_at
    FROM case_events
    WHERE kind IN ('route', 'reroute', 'accept', 'return', 'resolve', 'confirm', 'auto_close', 'dispute')
) p WHERE p.id = case_events.id
"""
_GUARDED = (
    "case_id, department_id, kind, from_status, to_status, note, data, created_at, category_id, on_time,"
    " handling_seconds, prior_at, prior_in_department_at"
)
_PG_GUARD = (
    "DROP TRIGGER case_events_no_update ON case_events",
    f"CREATE TRIGGER case_events_no_update BEFORE UPDATE OF {_GUARDED} ON case_events"
    " FOR EACH ROW EXECUTE FUNCTION case_events_append_only()",
)
_SQLITE_GUARD = (
    "DROP TRIGGER case_events_no_update",
    f"CREATE TRIGGER case_events_no_update BEFORE UPDATE OF {_GUARDED} ON case_events"
    " BEGIN SELECT RAISE(ABORT, 'case_events is append-only'); END",
)


async def backfill_and_guard(apps: object, schema_editor: object) -> None:
    client = schema_editor.client  # type: ignore[attr-defined]
    postgres = client.capabilities.dialect == "postgres"
    for sql in (_PG_BACKFILL, _PRIORS, *_PG_GUARD) if postgres else (_SQLITE_BACKFILL, _PRIORS, *_SQLITE_GUARD):
        await client.execute_query(sql)


class Migration(migrations.Migration):
    dependencies = [('models', '0008_queue')]

    initial = False

    operations = [
        ops.AddField(
            model_name='CaseEvent',
            name='category_id',
            field=fields.IntField(null=True),
        ),
        ops.AddField(
            model_name='CaseEvent',
            name='on_time',
            field=fields.BooleanField(null=True),
        ),
        ops.AddField(
            model_name='CaseEvent',
            name='handling_seconds',
            field=fields.FloatField(null=True),
        ),
        ops.AddField(
            model_name='CaseEvent',
            name='prior_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='CaseEvent',
            name='prior_in_department_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.RunPython(backfill_and_guard),
        ops.RemoveIndex(
            model_name='CaseEvent',
            fields=['kind', 'created_at'],
        ),
        ops.RemoveIndex(
            model_name='CaseEvent',
            fields=['department_id', 'kind', 'created_at'],
        ),
        ops.AddIndex(
            model_name='CaseEvent',
            index=Index(
                fields=['kind', 'created_at', 'department_id', 'category_id', 'on_time', 'handling_seconds',
                        'prior_at', 'prior_in_department_at']
            ),
        ),
    ]
