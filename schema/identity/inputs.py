"""Inputs of the sign-in and account mutations."""

from __future__ import annotations

import strawberry

from identity.models import Role


@strawberry.input
class DeviceRegisterInput:
    device_key: str = strawberry.field(
        description="32+ random URL-safe characters generated once by the app and kept secret on the device."
    )


@strawberry.input
class SignInInput:
    login: str = strawberry.field(description="Username or phone number.")
    password: str


@strawberry.input
class TokenRefreshInput:
    refresh_token: str


@strawberry.input
class PhoneVerificationStartInput:
    phone: str


@strawberry.input
class PhoneVerificationConfirmInput:
    phone: str
    code: str
    sign_out_other_devices: bool = strawberry.field(
        default=False,
        description="When this recovers an account on a new device: also end the sessions of the "
        "account's other devices (the old phone). By default they stay signed in.",
    )


@strawberry.input
class AccountDeleteInput:
    confirm: bool = strawberry.field(description="Must be true: deleting an account cannot be undone.")


@strawberry.input
class UserCreateInput:
    role: Role
    username: str | None = None
    password: str | None = None
    display_name: str = ""
    phone: str | None = None
    department_id: strawberry.ID | None = None
