"""Honest track figures (issue 17): raw distance, pause and gap time, and what the straightness and
regularity signals measured. New nullable columns only: old patrols show them once recomputed."""

import functools
from json import dumps, loads

from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0022_tus_uploads')]

    initial = False

    operations = [
        ops.AddField(model_name='Patrol', name='raw_distance_m', field=fields.FloatField(null=True)),
        ops.AddField(model_name='Patrol', name='pause_time_s', field=fields.FloatField(null=True)),
        ops.AddField(model_name='Patrol', name='gap_time_s', field=fields.FloatField(null=True)),
        ops.AddField(
            model_name='Patrol',
            name='track_signals',
            field=fields.JSONField(null=True, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads),
        ),
    ]
