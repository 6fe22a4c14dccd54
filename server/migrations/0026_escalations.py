"""Reporting up the chain (issue 17 item 4): the escalations table only, no existing rows change."""

from tortoise import migrations
from tortoise.migrations import operations as ops
from patrols.chain_models import EscalationStatus
from patrols.rules import ChiefKind, ChiefLevel
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0025_volunteers_on_spot')]

    initial = False

    operations = [
        ops.CreateModel(
            name='Escalation',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('subject', fields.CharField(max_length=48)),
                ('from_chief', fields.ForeignKeyField('models.User', source_field='from_chief_id', db_constraint=True, to_field='id', related_name='escalations_sent', on_delete=OnDelete.RESTRICT)),
                ('to_chief', fields.ForeignKeyField('models.User', source_field='to_chief_id', db_constraint=True, to_field='id', related_name='escalations_received', on_delete=OnDelete.RESTRICT)),
                ('area', fields.ForeignKeyField('models.PatrolArea', source_field='area_id', db_constraint=True, to_field='id', related_name='escalations', on_delete=OnDelete.RESTRICT)),
                ('from_level', fields.CharEnumField(description='PROVINCE: PROVINCE\nCITY: CITY\nCOUNTY: COUNTY\nTOWNSHIP: TOWNSHIP\nVILLAGE: VILLAGE', enum_type=ChiefLevel, max_length=16)),
                ('from_kind', fields.CharEnumField(description='RIVER: RIVER\nLAKE: LAKE\nFOREST: FOREST\nPATROLLER: PATROLLER', enum_type=ChiefKind, max_length=16)),
                ('to_level', fields.CharEnumField(description='PROVINCE: PROVINCE\nCITY: CITY\nCOUNTY: COUNTY\nTOWNSHIP: TOWNSHIP\nVILLAGE: VILLAGE', enum_type=ChiefLevel, max_length=16)),
                ('observation', fields.ForeignKeyField('models.Observation', source_field='observation_id', null=True, db_constraint=True, to_field='id', related_name='escalations', on_delete=OnDelete.SET_NULL)),
                ('case_id', fields.IntField(null=True)),
                ('case_reference', fields.CharField(null=True, max_length=32)),
                ('note', fields.TextField(default='', unique=False)),
                ('status', fields.CharEnumField(default=EscalationStatus.REPORTED, description='REPORTED: REPORTED\nASSIGNED: ASSIGNED', enum_type=EscalationStatus, max_length=16)),
                ('department_id', fields.IntField(null=True)),
                ('deadline', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('assigned_by', fields.ForeignKeyField('models.User', source_field='assigned_by_id', null=True, db_constraint=True, to_field='id', related_name='escalations_assigned', on_delete=OnDelete.RESTRICT)),
                ('assigned_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('assignment_note', fields.TextField(default='', unique=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'patrol_escalations', 'app': 'models', 'unique_together': (('from_chief', 'subject'),), 'indexes': [Index(fields=['to_chief_id', 'created_at']), Index(fields=['area_id', 'created_at'])], 'pk_attr': 'id', 'table_description': 'A problem a chief reported up to a chief above them (上报), and its assignment (交办).'},
            bases=['Model'],
        ),
    ]
