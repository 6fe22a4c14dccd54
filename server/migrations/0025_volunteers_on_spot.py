"""Issue 17 items 3 and 7: observations handled on the spot (现场处理) with after-photos, social
supervisors (民间河长): the VOLUNTEER role, their enrollments in areas, and patrols marked as theirs.

New columns have defaults (old observations are open or handed off; old patrols are chiefs'). The
role column stays a VARCHAR(16): only its generated description lists the new value, so that change
is recorded in the migration state without touching the table (on SQLite altering a column rebuilds
the whole users table and drops its indexes)."""

from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from identity.models import Role
from json import dumps, loads
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index



class _DescribeOnly(ops.AlterField):
    """The field as the models now describe it; the database column is unchanged."""

    async def database_forward(self, *args: object, **kwargs: object) -> None:
        return None

    async def database_backward(self, *args: object, **kwargs: object) -> None:
        return None


class Migration(migrations.Migration):
    dependencies = [('models', '0024_city_calendar')]

    initial = False

    operations = [
        ops.CreateModel(
            name='VolunteerEnrollment',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('volunteer', fields.ForeignKeyField('models.User', source_field='volunteer_id', db_constraint=True, to_field='id', related_name='volunteer_enrollments', on_delete=OnDelete.RESTRICT)),
                ('area', fields.ForeignKeyField('models.PatrolArea', source_field='area_id', db_constraint=True, to_field='id', related_name='volunteer_enrollments', on_delete=OnDelete.RESTRICT)),
                ('valid_from', fields.DateField()),
                ('valid_to', fields.DateField(null=True)),
                ('enrolled_by_id', fields.IntField()),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'patrol_volunteer_enrollments', 'app': 'models', 'unique_together': (('volunteer', 'area', 'valid_from'),), 'indexes': [Index(fields=['area_id', 'valid_from'])], 'pk_attr': 'id', 'table_description': 'A social supervisor (民间河长) enrolled to patrol an area for a period.'},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='Observation',
            name='after_photo_ids',
            field=fields.JSONField(default=list, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads),
        ),
        ops.AddField(
            model_name='Observation',
            name='handled_on_spot_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='Observation',
            name='handling_note',
            field=fields.TextField(default='', unique=False),
        ),
        ops.AddField(
            model_name='Patrol',
            name='by_volunteer',
            field=fields.BooleanField(default=False),
        ),
        _DescribeOnly(
            model_name='User',
            name='role',
            field=fields.CharEnumField(db_index=True, description='CITIZEN: CITIZEN\nCHIEF: CHIEF\nVOLUNTEER: VOLUNTEER\nSTAFF: STAFF\nDISPATCHER: DISPATCHER\nADMIN: ADMIN', enum_type=Role, max_length=16),
        ),
    ]
