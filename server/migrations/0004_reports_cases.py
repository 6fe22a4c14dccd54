from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from kernel.geo import CoordinateSystem
from reports.lifecycle import Status
from reports.models import Priority, RuleScope
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0003_photo_uploads')]

    initial = False

    operations = [
        ops.CreateModel(
            name='Case',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('reference', fields.CharField(unique=True, max_length=24)),
                ('category', fields.ForeignKeyField('models.Category', source_field='category_id', db_constraint=True, to_field='id', related_name='cases', on_delete=OnDelete.RESTRICT)),
                ('latitude', fields.FloatField()),
                ('longitude', fields.FloatField()),
                ('public_latitude', fields.FloatField()),
                ('public_longitude', fields.FloatField()),
                ('status', fields.CharEnumField(description='SUBMITTED: SUBMITTED\nROUTED: ROUTED\nTRIAGE: TRIAGE\nACCEPTED: ACCEPTED\nRETURNED: RETURNED\nIN_PROGRESS: IN_PROGRESS\nRESOLVED: RESOLVED\nVERIFIED: VERIFIED\nCLOSED: CLOSED\nREOPENED: REOPENED\nREJECTED: REJECTED\nMERGED: MERGED', enum_type=Status, max_length=16)),
                ('version', fields.IntField(default=1)),
                ('department', fields.ForeignKeyField('models.Department', source_field='department_id', null=True, db_constraint=True, to_field='id', related_name='cases', on_delete=OnDelete.RESTRICT)),
                ('assignee', fields.ForeignKeyField('models.User', source_field='assignee_id', null=True, db_constraint=True, to_field='id', related_name='assigned_cases', on_delete=OnDelete.SET_NULL)),
                ('priority', fields.IntEnumField(default=Priority.NORMAL, description='LOW: 1\nNORMAL: 2\nHIGH: 3\nURGENT: 4', enum_type=Priority, generated=False)),
                ('response_due_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('resolution_due_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('reporter_count', fields.IntField(default=1)),
                ('report_count', fields.IntField(default=1)),
                ('routing_rule', fields.CharField(null=True, max_length=128)),
                ('routing_reason', fields.TextField(default='', unique=False)),
                ('public', fields.BooleanField(default=False)),
                ('last_reported_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('updated_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'cases', 'app': 'models', 'indexes': [Index(fields=['category_id', 'status', 'latitude', 'longitude']), Index(fields=['public', 'public_latitude', 'public_longitude'])], 'pk_attr': 'id', 'table_description': 'The unit of work: one nuisance at one place, however many residents reported it.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='CaseEvent',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('case', fields.ForeignKeyField('models.Case', source_field='case_id', db_constraint=True, to_field='id', related_name='events', on_delete=OnDelete.RESTRICT)),
                ('actor', fields.ForeignKeyField('models.User', source_field='actor_id', null=True, db_constraint=True, to_field='id', related_name='case_events', on_delete=OnDelete.SET_NULL)),
                ('kind', fields.CharField(max_length=32)),
                ('from_status', fields.CharEnumField(null=True, description='SUBMITTED: SUBMITTED\nROUTED: ROUTED\nTRIAGE: TRIAGE\nACCEPTED: ACCEPTED\nRETURNED: RETURNED\nIN_PROGRESS: IN_PROGRESS\nRESOLVED: RESOLVED\nVERIFIED: VERIFIED\nCLOSED: CLOSED\nREOPENED: REOPENED\nREJECTED: REJECTED\nMERGED: MERGED', enum_type=Status, max_length=16)),
                ('to_status', fields.CharEnumField(null=True, description='SUBMITTED: SUBMITTED\nROUTED: ROUTED\nTRIAGE: TRIAGE\nACCEPTED: ACCEPTED\nRETURNED: RETURNED\nIN_PROGRESS: IN_PROGRESS\nRESOLVED: RESOLVED\nVERIFIED: VERIFIED\nCLOSED: CLOSED\nREOPENED: REOPENED\nREJECTED: REJECTED\nMERGED: MERGED', enum_type=Status, max_length=16)),
                ('note', fields.TextField(default='', unique=False)),
                ('data', fields.JSONField(default=dict, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'case_events', 'app': 'models', 'indexes': [Index(fields=['case_id', 'id'])], 'pk_attr': 'id', 'table_description': 'Append-only: every change of a case, in order.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='ConfigStamp',
            fields=[
                ('key', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=32)),
                ('token', fields.CharField(max_length=36)),
            ],
            options={'table': 'config_stamps', 'app': 'models', 'pk_attr': 'key', 'table_description': 'A token that changes whenever routing data changes, so every process rebuilds its cached router.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Jurisdiction',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('code', fields.CharField(unique=True, max_length=32)),
                ('name', fields.CharField(max_length=200)),
                ('geometry', fields.JSONField(encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('min_lat', fields.FloatField()),
                ('min_lon', fields.FloatField()),
                ('max_lat', fields.FloatField()),
                ('max_lon', fields.FloatField()),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'jurisdictions', 'app': 'models', 'pk_attr': 'id', 'table_description': 'An administrative area as a WGS-84 GeoJSON (Multi)Polygon.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Report',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('reporter', fields.ForeignKeyField('models.User', source_field='reporter_id', db_constraint=True, to_field='id', related_name='reports', on_delete=OnDelete.RESTRICT)),
                ('client_id', fields.CharField(max_length=64)),
                ('fingerprint', fields.CharField(max_length=64)),
                ('category', fields.ForeignKeyField('models.Category', source_field='category_id', db_constraint=True, to_field='id', related_name='reports', on_delete=OnDelete.RESTRICT)),
                ('case', fields.ForeignKeyField('models.Case', source_field='case_id', db_constraint=True, to_field='id', related_name='reports', on_delete=OnDelete.RESTRICT)),
                ('description', fields.TextField(unique=False)),
                ('latitude', fields.FloatField()),
                ('longitude', fields.FloatField()),
                ('original_latitude', fields.FloatField()),
                ('original_longitude', fields.FloatField()),
                ('crs', fields.CharEnumField(description='WGS84: WGS84\nGCJ02: GCJ02\nBD09: BD09', enum_type=CoordinateSystem, max_length=8)),
                ('accuracy_m', fields.FloatField(null=True)),
                ('observed_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('evidence', fields.JSONField(default=dict, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('photo_ids', fields.JSONField(default=list, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('anonymous', fields.BooleanField(default=False)),
                ('contact_consent', fields.BooleanField(default=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'reports', 'app': 'models', 'unique_together': (('reporter', 'client_id'),), 'indexes': [Index(fields=['reporter_id', 'created_at'])], 'pk_attr': 'id', 'table_description': 'One submission by one resident. Private: only its reporter and the staff of its case see it.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='RoutingRule',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('code', fields.CharField(unique=True, max_length=128)),
                ('scope', fields.CharEnumField(description='NATIONAL: NATIONAL\nCITY: CITY', enum_type=RuleScope, max_length=16)),
                ('category', fields.CharField(max_length=64)),
                ('department_kind', fields.CharField(null=True, max_length=64)),
                ('department_code', fields.CharField(null=True, max_length=64)),
                ('jurisdiction_code', fields.CharField(null=True, max_length=32)),
                ('window', fields.JSONField(null=True, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('conditions', fields.JSONField(default=list, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('priority', fields.IntField(default=0)),
                ('source', fields.TextField(unique=False)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'routing_rules', 'app': 'models', 'pk_attr': 'id', 'table_description': 'One row of the routing table (see reports.routing for the precedence).'},
            bases=['Model'],
        ),
        ops.AlterModelOptions(
            name='Category',
            options={'table': 'categories', 'app': 'models', 'pk_attr': 'id', 'table_description': 'One reportable nuisance, seeded from reports/data/categories.json and editable by admins.'},
        ),
        ops.AddField(
            model_name='Category',
            name='active',
            field=fields.BooleanField(default=True),
        ),
        ops.AddField(
            model_name='Category',
            name='after_photos_required',
            field=fields.BooleanField(default=False),
        ),
        ops.AddField(
            model_name='Category',
            name='duplicate_radius_m',
            field=fields.FloatField(default=250.0),
        ),
        ops.AddField(
            model_name='Category',
            name='duplicate_window_hours',
            field=fields.FloatField(default=24.0),
        ),
        ops.AddField(
            model_name='Category',
            name='evidence_schema',
            field=fields.JSONField(default=dict, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads),
        ),
        ops.AddField(
            model_name='Category',
            name='home_related',
            field=fields.BooleanField(default=False),
        ),
        ops.AddField(
            model_name='Category',
            name='notice_en',
            field=fields.TextField(null=True, unique=False),
        ),
        ops.AddField(
            model_name='Category',
            name='notice_zh',
            field=fields.TextField(null=True, unique=False),
        ),
        ops.AddField(
            model_name='Category',
            name='sla_policy',
            field=fields.CharField(default='hotline_5wd', max_length=64),
        ),
        ops.AddField(
            model_name='Category',
            name='verification_required',
            field=fields.BooleanField(default=False),
        ),
        ops.AddField(
            model_name='Department',
            name='jurisdiction',
            field=fields.ForeignKeyField('models.Jurisdiction', source_field='jurisdiction_id', null=True, db_constraint=True, to_field='id', related_name='departments', on_delete=OnDelete.RESTRICT),
        ),
    ]
