"""Sign-in, tokens, phone verification and account creation, with their payloads."""

from __future__ import annotations

from datetime import datetime

import strawberry

from identity import rights, service
from identity.models import Role
from kernel.errors import invalid
from reports import access as reports_access
from schema.context import Info
from schema.errors import UserError, payload_mutation
from schema.identity.inputs import (
    AccountDeleteInput,
    DeviceRegisterInput,
    PhoneVerificationConfirmInput,
    PhoneVerificationStartInput,
    SignInInput,
    TokenRefreshInput,
    UserCreateInput,
)
from schema.identity.types import UserNode
from schema.node import decode_id


def _client_address(info: Info) -> str | None:
    """The caller's address, for the throttles that count per address."""
    client = info.context.request.client
    return client.host if client else None


@strawberry.type
class AuthPayload:
    access_token: str | None = None
    refresh_token: str | None = None
    expires_in: int | None = strawberry.field(default=None, description="Seconds the access token lives.")
    user: UserNode | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)

    @classmethod
    def of(cls, tokens: service.Tokens) -> AuthPayload:
        return cls(
            access_token=tokens.access_token,
            refresh_token=tokens.refresh_token,
            expires_in=tokens.expires_in,
            user=UserNode.from_model(tokens.user),
        )


@strawberry.type
class SignOutPayload:
    signed_out: bool = False
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class PhoneVerificationStartPayload:
    expires_at: datetime | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class UserPayload:
    user: UserNode | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)
    account_recovered: bool = strawberry.field(
        default=False,
        description="phoneVerificationConfirm only: true when this device moved onto the account that "
        "already held the number (account recovery). The tokens below then replace the caller's, whose "
        "session has ended.",
    )
    access_token: str | None = strawberry.field(
        default=None, description="The recovered account's new access token (account recovery only)."
    )
    refresh_token: str | None = strawberry.field(
        default=None, description="The recovered account's new refresh token (account recovery only)."
    )
    expires_in: int | None = strawberry.field(default=None, description="Seconds the access token lives.")


@strawberry.type
class AccountDeletePayload:
    deleted: bool = False
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class IdentityMutation:
    @payload_mutation("An app installation starts as an anonymous resident; no personal data needed.")
    async def device_register(self, info: Info, input: DeviceRegisterInput) -> AuthPayload:
        return AuthPayload.of(await service.register_device(input.device_key, info.context.identity))

    @payload_mutation("Staff and chiefs sign in with a username or phone number and a password.")
    async def sign_in(self, info: Info, input: SignInInput) -> AuthPayload:
        identity, address = info.context.identity, _client_address(info)
        return AuthPayload.of(await service.sign_in(input.login, input.password, identity, address))

    @payload_mutation("Trade a refresh token for new tokens; the old refresh token stops working.")
    async def token_refresh(self, info: Info, input: TokenRefreshInput) -> AuthPayload:
        return AuthPayload.of(await service.refresh_tokens(input.refresh_token, info.context.identity))

    @payload_mutation("End the session that issued this refresh token.")
    async def sign_out(self, info: Info, input: TokenRefreshInput) -> SignOutPayload:
        await service.sign_out(input.refresh_token)
        return SignOutPayload(signed_out=True)

    @payload_mutation("Send a one-time code to a phone number the caller wants to add to their account.")
    async def phone_verification_start(
        self, info: Info, input: PhoneVerificationStartInput
    ) -> PhoneVerificationStartPayload:
        principal = info.context.require_principal()
        challenge = await service.start_phone_verification(
            principal.user, input.phone, info.context.identity, _client_address(info)
        )
        return PhoneVerificationStartPayload(expires_at=challenge.expires_at)

    @payload_mutation("Prove the phone number with the code that was sent to it.")
    async def phone_verification_confirm(
        self, info: Info, input: PhoneVerificationConfirmInput
    ) -> UserPayload:
        principal = info.context.require_principal()
        confirmed = await service.confirm_phone(
            principal.user,
            input.phone,
            input.code,
            info.context.identity,
            end_other_sessions=input.sign_out_other_devices,
        )
        payload = UserPayload(user=UserNode.from_model(confirmed.user))
        if confirmed.recovered is not None:
            payload.account_recovered = True
            payload.access_token = confirmed.recovered.access_token
            payload.refresh_token = confirmed.recovered.refresh_token
            payload.expires_in = confirmed.recovered.expires_in
        return payload

    @payload_mutation(
        "Delete the caller's resident account: personal data cleared, sessions ended; the reports stay "
        "in their cases, anonymized. Cannot be undone."
    )
    async def account_delete(self, info: Info, input: AccountDeleteInput) -> AccountDeletePayload:
        principal = info.context.require_principal()
        await rights.delete_account(principal.user, input.confirm)
        return AccountDeletePayload(deleted=True)

    @payload_mutation("Create a staff, dispatcher, chief or admin account. Admins only.")
    async def user_create(self, info: Info, input: UserCreateInput) -> UserPayload:
        principal = info.context.require_role(Role.ADMIN)
        department_id = None
        if input.department_id is not None:
            department_id = decode_id(input.department_id, "Department", "input", "departmentId")
            if not await reports_access.visible_departments(principal, [department_id]):
                raise invalid("No such department.", "input", "departmentId")
        user = await service.create_user(
            role=input.role,
            username=input.username,
            password=input.password,
            display_name=input.display_name,
            phone=input.phone,
            department_id=department_id,
        )
        return UserPayload(user=UserNode.from_model(user))
