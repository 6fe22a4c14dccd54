from __future__ import annotations

import enum
from typing import Any

from tortoise import fields
from tortoise.models import Model


class Role(enum.StrEnum):
    CITIZEN = "CITIZEN"
    CHIEF = "CHIEF"
    # A social supervisor (民间河长): patrols and observes the areas the office enrolled them in,
    # counted apart from the chiefs and never acting as one (patrols.access).
    VOLUNTEER = "VOLUNTEER"
    STAFF = "STAFF"
    DISPATCHER = "DISPATCHER"
    ADMIN = "ADMIN"


class User(Model):
    id = fields.IntField(primary_key=True)
    role = fields.CharEnumField(Role, max_length=16, db_index=True)
    username = fields.CharField(max_length=64, unique=True, null=True)
    # Personal information: shown only to its owner and to admins.
    phone = fields.CharField(max_length=20, unique=True, null=True)
    phone_verified_at = fields.DatetimeField(null=True)
    password_hash = fields.CharField(max_length=255, null=True)
    display_name = fields.CharField(max_length=100, default="")
    department: fields.ForeignKeyNullableRelation = fields.ForeignKeyField(
        "models.Department", related_name="staff", null=True, on_delete=fields.RESTRICT
    )
    department_id: int | None
    # An anonymous resident's device proves itself with a random key that only its hash is kept of.
    device_key_hash = fields.CharField(max_length=64, unique=True, null=True)
    is_active = fields.BooleanField(default=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    # When retention removed the phone number of this account, unused past its period (identity.retention).
    phone_removed_at = fields.DatetimeField(null=True)

    class Meta:
        table = "users"


class Session(Model):
    """One sign-in: a family of rotating refresh tokens. Revoking it ends every token it issued."""

    id = fields.IntField(primary_key=True)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="sessions", on_delete=fields.CASCADE
    )
    user_id: int
    created_at = fields.DatetimeField(auto_now_add=True)
    revoked_at = fields.DatetimeField(null=True)
    revoked_reason = fields.CharField(max_length=32, null=True)

    class Meta:
        table = "sessions"


class RefreshToken(Model):
    id = fields.IntField(primary_key=True)
    session: fields.ForeignKeyRelation[Session] = fields.ForeignKeyField(
        "models.Session", related_name="refresh_tokens", on_delete=fields.CASCADE
    )
    session_id: int
    token_hash = fields.CharField(max_length=64, unique=True)
    expires_at = fields.DatetimeField()
    rotated_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "refresh_tokens"


class OtpChallenge(Model):
    id = fields.IntField(primary_key=True)
    phone = fields.CharField(max_length=20, db_index=True)
    code_hash = fields.CharField(max_length=64)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="otp_challenges", on_delete=fields.CASCADE
    )
    user_id: int
    # The client address that asked for the code: codes are limited per address as well as per account.
    address = fields.CharField(max_length=64, null=True)
    attempts = fields.IntField(default=0)
    expires_at = fields.DatetimeField()
    consumed_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "otp_challenges"
        indexes = (("user_id", "created_at"), ("address", "created_at"))


class SignInFailure(Model):
    """Failed password attempts, counted per account and per client address to throttle guessing
    across processes.

    `login` is the canonical key of what was tried: `account:<id>` for an existing account, whichever
    spelling of its username or phone number was used, else a hash of the unknown login.
    """

    id = fields.IntField(primary_key=True)
    login = fields.CharField(max_length=64)
    address = fields.CharField(max_length=64, null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "sign_in_failures"
        indexes = (("login", "created_at"), ("address", "created_at"))


class AccessKind(enum.StrEnum):
    """What kind of personal data a recorded read was of."""

    REPORTER_IDENTITY = "reporter_identity"  # who a reporter is (their account)
    PHONE = "phone"  # someone else's phone number
    REPORT = "report"  # a non-anonymized report's details
    ORIGINAL_PHOTO = "original_photo"  # the evidence original as uploaded
    PHOTO_EXIF = "photo_exif"  # the EXIF position or camera of a photo
    TRACK = "track"  # a chief's patrol track
    REVEAL = "reveal"  # an anonymous reporter's identity, revealed by an admin with a reason


class AccessRecord(Model):
    """One read of personal data by staff or an admin (or a refused attempt at one): who, what, when,
    why and under which request.

    Append-only: rows are written by `identity.audit` and never changed or deleted through the
    application (no API changes them, and `save()` of an existing row is refused).
    """

    id = fields.BigIntField(primary_key=True)
    # Not a foreign key: the log outlives the accounts it names and must not block their deletion.
    user_id = fields.IntField(description="The account that read")
    role = fields.CharField(max_length=16, description="Its role at the time")
    kind = fields.CharEnumField(AccessKind, max_length=32, description="What was read (AccessKind)")
    subject_type = fields.CharField(max_length=32, description="user, report, photo, patrol")
    subject_id = fields.BigIntField()
    purpose = fields.TextField(default="", description="Why (required for a reveal)")
    request_id = fields.CharField(max_length=64, null=True)
    at = fields.DatetimeField()
    # An attempt the access rules turned away (answered like a missing object): nothing was read.
    refused = fields.BooleanField(default=False, description="The attempt was refused: nothing was read")

    class Meta:
        table = "access_log"
        table_description = "Reads of personal data by staff and admins (append-only)"
        indexes = (("user_id", "id"), ("subject_type", "subject_id", "id"))

    async def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._saved_in_db:
            await super().save(*args, **kwargs)
            return
        raise PermissionError("The access log is append-only: a record cannot be changed.")

    async def delete(self, *args: Any, **kwargs: Any) -> None:
        raise PermissionError("The access log is append-only: a record cannot be deleted.")


class ServiceAccount(Model):
    """A machine credential (another city system): an API key `evk_<prefix>_<secret>` with scopes.

    Only a hash of the secret is kept; the key is shown once, when it is created or rotated. Requests it
    makes are attributed to its own account (`user`), never to the admin who created it."""

    id = fields.IntField(primary_key=True)
    name = fields.CharField(max_length=100)
    # The public part of the key: finds the row without scanning hashes, and names the key in logs.
    prefix = fields.CharField(max_length=16, unique=True)
    secret_hash = fields.CharField(max_length=64)
    scopes: fields.JSONField[list[str]] = fields.JSONField(default=list)
    requests_per_minute = fields.IntField(default=600)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="service_accounts", on_delete=fields.RESTRICT
    )
    user_id: int
    created_by_id = fields.IntField(null=True)  # not a foreign key: the admin may leave
    created_at = fields.DatetimeField(auto_now_add=True)
    rotated_at = fields.DatetimeField(null=True)
    revoked_at = fields.DatetimeField(null=True)
    last_used_at = fields.DatetimeField(null=True)

    class Meta:
        table = "service_accounts"
