"""Access log refusals (issue 15): a record may say the attempt was refused (nothing was read).
Existing records were all reads (false).

Also a data step: photos follow their case off the public map (reports.access.case_photo_publicity).
Before this release a rejected case, or a report merged or split into a case in triage, left its
photos public; the photos of every case not on the map are made private here."""

import json

from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

# The photo ids held by cases not on the public map: their reports' and their resolutions'.
_HELD_BY_HIDDEN_CASES = (
    "SELECT r.photo_ids FROM reports r JOIN cases c ON c.id = r.case_id WHERE NOT c.public "
    "UNION ALL SELECT resolution_photo_ids FROM cases WHERE NOT public"
)


async def hide_photos_of_hidden_cases(apps: object, schema_editor: object) -> None:
    client = schema_editor.client  # type: ignore[attr-defined]
    _, rows = await client.execute_query(_HELD_BY_HIDDEN_CASES)
    held: set[int] = set()
    for (ids,) in rows:  # a JSON list: text on SQLite, maybe decoded on PostgreSQL
        held.update(int(i) for i in (json.loads(ids) if isinstance(ids, str) else ids or ()))
    ordered = sorted(held)
    for start in range(0, len(ordered), 1000):  # ids from the database: integers, safe inline
        chunk = ", ".join(str(i) for i in ordered[start : start + 1000])
        await client.execute_query(f"UPDATE photos SET public = false WHERE public AND id IN ({chunk})")


class Migration(migrations.Migration):
    dependencies = [('models', '0017_retention')]

    initial = False

    operations = [
        ops.AddField(
            model_name='AccessRecord',
            name='refused',
            field=fields.BooleanField(default=False, description='The attempt was refused: nothing was read'),
        ),
        ops.RunPython(hide_photos_of_hidden_cases),
    ]
