"""tus uploads (issue 16): an upload created over tus has no announced SHA-256, so the column may be null.

On SQLite, Tortoise alters a column by rebuilding the table, which drops its indexes and its unique
constraint; they are created again here (one client id per owner is what makes a retried start safe)."""

from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

_SQLITE_INDEXES = (
    'CREATE UNIQUE INDEX IF NOT EXISTS "uid_upload_sess_owner_i_447c0d" ON "upload_sessions" ("owner_id", "client_id")',
    'CREATE INDEX IF NOT EXISTS "idx_upload_sess_sha256_671536" ON "upload_sessions" ("sha256")',
    'CREATE INDEX IF NOT EXISTS "idx_upload_sess_expires_3a131a" ON "upload_sessions" ("expires_at")',
)


async def restore_sqlite_indexes(apps: object, schema_editor: object) -> None:
    client = schema_editor.client  # type: ignore[attr-defined]
    if client.capabilities.dialect != "sqlite":
        return
    for statement in _SQLITE_INDEXES:
        await client.execute_script(statement)


class Migration(migrations.Migration):
    dependencies = [('models', '0021_trusted_documents')]

    initial = False

    operations = [
        ops.AlterField(
            model_name='UploadSession',
            name='sha256',
            field=fields.CharField(null=True, db_index=True, max_length=64),
        ),
        ops.RunPython(restore_sqlite_indexes),
    ]
