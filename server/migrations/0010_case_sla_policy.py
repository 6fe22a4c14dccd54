from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

# A case keeps the SLA policy its deadlines run on, chosen when a department first gets it (a category's
# policy may send urgent or regional cases to another one). Existing cases' due times were computed from
# their category's policy, so that is what they keep.


class Migration(migrations.Migration):
    dependencies = [('models', '0009_statistics')]

    initial = False

    operations = [
        ops.AddField(
            model_name='Case',
            name='sla_policy',
            field=fields.CharField(null=True, max_length=64),
        ),
        ops.RunSQL(
            "UPDATE cases SET sla_policy = (SELECT sla_policy FROM categories"
            " WHERE categories.id = cases.category_id) WHERE sla_policy IS NULL"
        ),
    ]
