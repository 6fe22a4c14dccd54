"""Access log refusals (issue 15): a record may say the attempt was refused (nothing was read).
Existing records were all reads (false)."""

from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0017_retention')]

    initial = False

    operations = [
        ops.AddField(
            model_name='AccessRecord',
            name='refused',
            field=fields.BooleanField(default=False, description='The attempt was refused: nothing was read'),
        ),
    ]
