from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields
from tortoise.indexes import Index

# Sign-in failures and one-time codes are counted per client address too, beside the account (sign-in
# failures now key on the account, whatever spelling of the login was used).


class Migration(migrations.Migration):
    dependencies = [('models', '0010_case_sla_policy')]

    initial = False

    operations = [
        ops.AddField(
            model_name='OtpChallenge',
            name='address',
            field=fields.CharField(null=True, max_length=64),
        ),
        ops.AddIndex(
            model_name='OtpChallenge',
            index=Index(fields=['user_id', 'created_at']),
        ),
        ops.AddIndex(
            model_name='OtpChallenge',
            index=Index(fields=['address', 'created_at']),
        ),
        ops.AlterModelOptions(
            name='SignInFailure',
            options={'table': 'sign_in_failures', 'app': 'models', 'indexes': [Index(fields=['login', 'created_at']), Index(fields=['address', 'created_at'])], 'pk_attr': 'id', 'table_description': 'Failed password attempts, counted per account and per client address to throttle guessing'},
        ),
        ops.AddField(
            model_name='SignInFailure',
            name='address',
            field=fields.CharField(null=True, max_length=64),
        ),
        ops.AddIndex(
            model_name='SignInFailure',
            index=Index(fields=['address', 'created_at']),
        ),
    ]
