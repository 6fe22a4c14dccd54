from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from patrols.models import PatrolStatus
from patrols.rules import ChiefKind, ChiefLevel
from patrols.track import PatrolMode
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0004_reports_cases')]

    initial = False

    operations = [
        ops.CreateModel(
            name='Delegation',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('chief', fields.ForeignKeyField('models.User', source_field='chief_id', db_constraint=True, to_field='id', related_name='delegations_given', on_delete=OnDelete.RESTRICT)),
                ('assistant', fields.ForeignKeyField('models.User', source_field='assistant_id', db_constraint=True, to_field='id', related_name='delegations_received', on_delete=OnDelete.RESTRICT)),
                ('valid_from', fields.DateField()),
                ('valid_to', fields.DateField()),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'patrol_delegations', 'app': 'models', 'indexes': [Index(fields=['assistant_id', 'valid_from'])], 'pk_attr': 'id', 'table_description': 'A chief lets an assistant (河长助理) patrol for them for a period. The assistant signs in with'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Patrol',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('client_id', fields.CharField(max_length=64)),
                ('fingerprint', fields.CharField(max_length=64)),
                ('chief', fields.ForeignKeyField('models.User', source_field='chief_id', db_constraint=True, to_field='id', related_name='patrols', on_delete=OnDelete.RESTRICT)),
                ('counted_for', fields.ForeignKeyField('models.User', source_field='counted_for_id', db_constraint=True, to_field='id', related_name='patrols_counted', on_delete=OnDelete.RESTRICT)),
                ('area', fields.ForeignKeyField('models.PatrolArea', source_field='area_id', db_constraint=True, to_field='id', related_name='patrols', on_delete=OnDelete.RESTRICT)),
                ('mode', fields.CharEnumField(description='FOOT: FOOT\nVEHICLE: VEHICLE\nBOAT: BOAT\nDRONE: DRONE', enum_type=PatrolMode, max_length=8)),
                ('status', fields.CharEnumField(default=PatrolStatus.RECORDING, description='RECORDING: RECORDING\nPAUSED: PAUSED\nFINISHED: FINISHED', enum_type=PatrolStatus, max_length=10)),
                ('started_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('started_received_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('finished_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('finished_received_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('pauses', fields.JSONField(default=list, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('clock_skew_s', fields.FloatField(null=True)),
                ('held_ranges', fields.JSONField(default=list, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('point_count', fields.IntField(default=0)),
                ('last_upload_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('valid_point_count', fields.IntField(null=True)),
                ('flagged_point_count', fields.IntField(null=True)),
                ('duration_s', fields.FloatField(null=True)),
                ('moving_time_s', fields.FloatField(null=True)),
                ('distance_m', fields.FloatField(null=True)),
                ('coverage', fields.FloatField(null=True)),
                ('authenticity_flags', fields.JSONField(default=list, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('authenticity_reasons', fields.JSONField(default=list, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('late_upload', fields.BooleanField(default=False)),
                ('metrics_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'patrols', 'app': 'models', 'unique_together': (('chief', 'client_id'),), 'indexes': [Index(fields=['counted_for_id', 'started_at']), Index(fields=['area_id', 'started_at'])], 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Observation',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('client_id', fields.CharField(max_length=64)),
                ('fingerprint', fields.CharField(max_length=64)),
                ('patrol', fields.ForeignKeyField('models.Patrol', source_field='patrol_id', db_constraint=True, to_field='id', related_name='observations', on_delete=OnDelete.CASCADE)),
                ('category', fields.CharField(max_length=32)),
                ('note', fields.TextField(default='', unique=False)),
                ('lat', fields.FloatField()),
                ('lon', fields.FloatField()),
                ('observed_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('photo_ids', fields.JSONField(default=list, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('case_id', fields.IntField(null=True)),
                ('case_reference', fields.CharField(null=True, max_length=32)),
                ('escalated_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'patrol_observations', 'app': 'models', 'unique_together': (('patrol', 'client_id'),), 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='PatrolRuleRow',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('code', fields.CharField(unique=True, max_length=64)),
                ('region_code', fields.CharField(db_index=True, max_length=12)),
                ('chief_level', fields.CharEnumField(description='PROVINCE: PROVINCE\nCITY: CITY\nCOUNTY: COUNTY\nTOWNSHIP: TOWNSHIP\nVILLAGE: VILLAGE', enum_type=ChiefLevel, max_length=16)),
                ('chief_kind', fields.CharEnumField(description='RIVER: RIVER\nLAKE: LAKE\nFOREST: FOREST\nPATROLLER: PATROLLER', enum_type=ChiefKind, max_length=16)),
                ('source', fields.TextField(unique=False)),
                ('definition', fields.JSONField(encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'patrol_rules', 'app': 'models', 'pk_attr': 'id', 'table_description': 'One patrol-frequency rule with its source. `definition` holds the rule as JSON'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='TrackPoint',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('patrol', fields.ForeignKeyField('models.Patrol', source_field='patrol_id', db_constraint=True, to_field='id', related_name='points', on_delete=OnDelete.CASCADE)),
                ('seq', fields.IntField()),
                ('t', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('lat', fields.FloatField()),
                ('lon', fields.FloatField()),
                ('orig_lat', fields.FloatField(null=True)),
                ('orig_lon', fields.FloatField(null=True)),
                ('crs', fields.CharField(default='WGS84', max_length=8)),
                ('accuracy_m', fields.FloatField(null=True)),
                ('speed_mps', fields.FloatField(null=True)),
                ('mock', fields.BooleanField(default=False)),
                ('flags', fields.JSONField(null=True, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
            ],
            options={'table': 'track_points', 'app': 'models', 'unique_together': (('patrol', 'seq'),), 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.AlterModelOptions(
            name='ChiefAssignment',
            options={'table': 'chief_assignments', 'app': 'models', 'indexes': [Index(fields=['chief_id', 'valid_from']), Index(fields=['area_id', 'valid_from'])], 'pk_attr': 'id', 'table_description': 'Who is responsible for an area, at which level, from when to when. Never deleted: ending an'},
        ),
        ops.AddIndex(
            model_name='ChiefAssignment',
            index=Index(fields=['chief_id', 'valid_from']),
        ),
        ops.AddIndex(
            model_name='ChiefAssignment',
            index=Index(fields=['area_id', 'valid_from']),
        ),
        ops.AlterModelOptions(
            name='PatrolArea',
            options={'table': 'patrol_areas', 'app': 'models', 'pk_attr': 'id', 'table_description': 'A river segment (LineString) or a lake / forest area (Polygon), WGS-84 GeoJSON.'},
        ),
        ops.AddField(
            model_name='PatrolArea',
            name='area_m2',
            field=fields.FloatField(default=0.0),
        ),
        ops.AddField(
            model_name='PatrolArea',
            name='length_m',
            field=fields.FloatField(default=0.0),
        ),
        ops.AddField(
            model_name='PatrolArea',
            name='max_lat',
            field=fields.FloatField(default=0.0),
        ),
        ops.AddField(
            model_name='PatrolArea',
            name='max_lon',
            field=fields.FloatField(default=0.0),
        ),
        ops.AddField(
            model_name='PatrolArea',
            name='min_lat',
            field=fields.FloatField(default=0.0),
        ),
        ops.AddField(
            model_name='PatrolArea',
            name='min_lon',
            field=fields.FloatField(default=0.0),
        ),
    ]
