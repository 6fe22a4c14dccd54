from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from reports.models import ExtensionStatus
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

# The case log is append-only in the database itself, not only by convention: no statement may rewrite or
# delete an event. Only actor_id may change (ON DELETE SET NULL when a user is removed). SQLite gets the
# update guard only, because its test harness empties tables with DELETE (PostgreSQL uses TRUNCATE).
_PG_GUARD = """
CREATE OR REPLACE FUNCTION case_events_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'case_events is append-only';
END
$$ LANGUAGE plpgsql
"""
_PG_TRIGGERS = (
    "CREATE TRIGGER case_events_no_update BEFORE UPDATE OF case_id, department_id, kind, from_status, to_status, note, data,"
    " created_at ON case_events FOR EACH ROW EXECUTE FUNCTION case_events_append_only()",
    "CREATE TRIGGER case_events_no_delete BEFORE DELETE ON case_events"
    " FOR EACH ROW EXECUTE FUNCTION case_events_append_only()",
)
_SQLITE_TRIGGER = (
    "CREATE TRIGGER case_events_no_update BEFORE UPDATE OF case_id, department_id, kind, from_status, to_status, note, data,"
    " created_at ON case_events BEGIN SELECT RAISE(ABORT, 'case_events is append-only'); END"
)


async def guard_case_events(apps: object, schema_editor: object) -> None:
    client = schema_editor.client  # type: ignore[attr-defined]
    if client.capabilities.dialect == "postgres":
        for sql in (_PG_GUARD, *_PG_TRIGGERS):
            await client.execute_query(sql)
    else:
        await client.execute_query(_SQLITE_TRIGGER)


class Migration(migrations.Migration):
    dependencies = [('models', '0006_report_source')]

    initial = False

    operations = [
        ops.CreateModel(
            name='CaseFeedback',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('case', fields.ForeignKeyField('models.Case', source_field='case_id', db_constraint=True, to_field='id', related_name='feedback', on_delete=OnDelete.RESTRICT)),
                ('reporter', fields.ForeignKeyField('models.User', source_field='reporter_id', db_constraint=True, to_field='id', related_name='case_feedback', on_delete=OnDelete.RESTRICT)),
                ('rating', fields.IntField()),
                ('comment', fields.TextField(default='', unique=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('updated_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'case_feedback', 'app': 'models', 'unique_together': (('case', 'reporter'),), 'pk_attr': 'id', 'table_description': "A reporter's word on a resolved case: a rating of 1 to 5 and a comment, one row per reporter."},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='DeadlineExtension',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('case', fields.ForeignKeyField('models.Case', source_field='case_id', db_constraint=True, to_field='id', related_name='extensions', on_delete=OnDelete.RESTRICT)),
                ('requested_by', fields.ForeignKeyField('models.User', source_field='requested_by_id', null=True, db_constraint=True, to_field='id', related_name='extension_requests', on_delete=OnDelete.SET_NULL)),
                ('amount', fields.FloatField()),
                ('reason', fields.TextField(unique=False)),
                ('status', fields.CharEnumField(default=ExtensionStatus.PENDING, description='PENDING: PENDING\nAPPROVED: APPROVED\nDECLINED: DECLINED', enum_type=ExtensionStatus, max_length=16)),
                ('decided_by', fields.ForeignKeyField('models.User', source_field='decided_by_id', null=True, db_constraint=True, to_field='id', related_name='extension_decisions', on_delete=OnDelete.SET_NULL)),
                ('decision_note', fields.TextField(default='', unique=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('decided_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'deadline_extensions', 'app': 'models', 'indexes': [Index(fields=['case_id', 'status']), Index(fields=['status', 'created_at'])], 'pk_attr': 'id', 'table_description': 'A department asks for more time to resolve a case (延期), a dispatcher decides.'},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='CaseEvent',
            name='department_id',
            field=fields.IntField(null=True),
        ),
        ops.AddIndex(
            model_name='CaseEvent',
            index=Index(fields=['kind', 'created_at']),
        ),
        ops.AddIndex(
            model_name='CaseEvent',
            index=Index(fields=['department_id', 'kind', 'created_at']),
        ),
        ops.AddField(
            model_name='Case',
            name='closed_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='Case',
            name='dispatched_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='Case',
            name='escalated_for',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='Case',
            name='merged_into',
            field=fields.ForeignKeyField('models.Case', source_field='merged_into_id', null=True, db_constraint=True, to_field='id', related_name='merged_cases', on_delete=OnDelete.RESTRICT),
        ),
        ops.AddField(
            model_name='Case',
            name='reminded_for',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='Case',
            name='resolution_note',
            field=fields.TextField(default='', unique=False),
        ),
        ops.AddField(
            model_name='Case',
            name='resolution_photo_ids',
            field=fields.JSONField(default=list, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads),
        ),
        ops.AddField(
            model_name='Case',
            name='resolved_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='Case',
            name='responded_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='Case',
            name='rework_count',
            field=fields.IntField(default=0),
        ),
        ops.AddField(
            model_name='Case',
            name='sla_extension',
            field=fields.FloatField(default=0.0),
        ),
        ops.AddField(
            model_name='Case',
            name='sla_pauses',
            field=fields.JSONField(default=list, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads),
        ),
        ops.AddField(
            model_name='Case',
            name='status_changed_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='Case',
            name='summary',
            field=fields.TextField(default='', unique=False),
        ),
        ops.AddIndex(
            model_name='Case',
            index=Index(fields=['department_id', 'status', 'resolution_due_at', 'id']),
        ),
        ops.AddIndex(
            model_name='Case',
            index=Index(fields=['department_id', 'status', 'priority', 'id']),
        ),
        ops.AddIndex(
            model_name='Case',
            index=Index(fields=['department_id', 'status', 'id']),
        ),
        ops.AddIndex(
            model_name='Case',
            index=Index(fields=['status', 'resolution_due_at']),
        ),
        ops.AddIndex(
            model_name='Case',
            index=Index(fields=['status', 'status_changed_at']),
        ),
        ops.AddIndex(
            model_name='Case',
            index=Index(fields=['created_at']),
        ),
        # Cases opened before this migration: the clock started at creation, the status last changed then.
        ops.RunSQL(
            "UPDATE cases SET dispatched_at = created_at WHERE department_id IS NOT NULL AND dispatched_at IS NULL"
        ),
        ops.RunSQL(
            "UPDATE case_events SET department_id = (SELECT department_id FROM cases"
            " WHERE cases.id = case_events.case_id)"
        ),
        ops.RunSQL("UPDATE cases SET status_changed_at = updated_at WHERE status_changed_at IS NULL"),
        ops.RunPython(guard_case_events),
    ]
