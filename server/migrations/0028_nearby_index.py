"""`nearbyCases` searches one category's open public cases around a point by their public location and
ranks them there: led by category and status and holding the public location, this index answers the
ranking without reading the cases (issue 18: the call grew twelvefold from 10,000 to 1,000,000 cases)."""

from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.indexes import Index


class Migration(migrations.Migration):
    dependencies = [("models", "0027_office_figures")]

    initial = False

    operations = [
        ops.AddIndex(
            model_name="Case",
            index=Index(fields=["category_id", "status", "public", "public_latitude", "public_longitude"]),
        ),
    ]
