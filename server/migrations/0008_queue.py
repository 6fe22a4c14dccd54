from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.indexes import Index

# The department queue reads each status in index order: ROUTED cases by their response due time, the
# others by resolution due time, priority or id (0007). A queue row's first photo is the first report's:
# reports by (case_id, id).


class Migration(migrations.Migration):
    dependencies = [('models', '0007_casework')]

    initial = False

    operations = [
        ops.AddIndex(
            model_name='Case',
            index=Index(fields=['department_id', 'status', 'response_due_at', 'id']),
        ),
        ops.AddIndex(
            model_name='Report',
            index=Index(fields=['case_id', 'id']),
        ),
    ]
