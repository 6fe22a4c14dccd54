"""Users, departments, sign-in and tokens."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import strawberry
from strawberry import relay

from identity import service
from identity.models import Role
from identity.models import User as UserModel
from kernel.errors import invalid
from reports.models import Department as DepartmentModel
from schema.context import Info
from schema.errors import UserError, payload_mutation
from schema.node import decode_id
from schema.pagination import Connection, keyset_page


@strawberry.type(name="Department")
class DepartmentNode(relay.Node):
    id: relay.NodeID[int]
    code: str
    name: str
    kind: str

    @classmethod
    def from_model(cls, row: DepartmentModel) -> DepartmentNode:
        return cls(id=row.id, code=row.code, name=row.name, kind=row.kind)

    @classmethod
    async def resolve_nodes(
        cls, *, info: Info, node_ids: Any, required: bool = False
    ) -> list[DepartmentNode | None]:
        ids = [int(i) for i in node_ids]
        rows = {r.id: r for r in await DepartmentModel.filter(id__in=ids)}
        return [cls.from_model(rows[i]) if i in rows else None for i in ids]


@strawberry.type(name="User")
class UserNode(relay.Node):
    id: relay.NodeID[int]
    role: Role
    username: str | None
    display_name: str
    created_at: datetime
    _phone: strawberry.Private[str | None]
    _department_id: strawberry.Private[int | None]

    @classmethod
    def from_model(cls, row: UserModel) -> UserNode:
        return cls(
            id=row.id,
            role=row.role,
            username=row.username,
            display_name=row.display_name,
            created_at=row.created_at,
            _phone=row.phone,
            _department_id=row.department_id,
        )

    @strawberry.field(description="Only the account's owner and admins see it; null for everyone else.")
    def phone(self, info: Info) -> str | None:
        principal = info.context.principal
        if principal and (principal.user.id == self.id or principal.role == Role.ADMIN):
            return self._phone
        return None

    @strawberry.field
    async def department(self, info: Info) -> DepartmentNode | None:
        if self._department_id is None:
            return None
        row = await DepartmentModel.get_or_none(id=self._department_id)
        return DepartmentNode.from_model(row) if row else None

    @classmethod
    async def resolve_nodes(
        cls, *, info: Info, node_ids: Any, required: bool = False
    ) -> list[UserNode | None]:
        ids = [int(i) for i in node_ids]
        principal = info.context.principal
        if principal is None:
            return [None] * len(ids)
        query = UserModel.filter(id__in=ids)
        # Staff and dispatchers see colleagues' names; residents and chiefs see only themselves.
        if principal.role not in (Role.ADMIN, Role.DISPATCHER, Role.STAFF):
            query = query.filter(id=principal.user.id)
        elif principal.role != Role.ADMIN:
            query = query.exclude(role=Role.CITIZEN)
        rows = {r.id: r for r in await query}
        return [cls.from_model(rows[i]) if i in rows else None for i in ids]


# --- payloads and inputs ------------------------------------------------------------------------


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


@strawberry.type
class SignOutPayload:
    signed_out: bool = False
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input
class PhoneVerificationStartInput:
    phone: str


@strawberry.type
class PhoneVerificationStartPayload:
    expires_at: datetime | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input
class PhoneVerificationConfirmInput:
    phone: str
    code: str


@strawberry.type
class UserPayload:
    user: UserNode | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input
class UserCreateInput:
    role: Role
    username: str | None = None
    password: str | None = None
    display_name: str = ""
    phone: str | None = None
    department_id: strawberry.ID | None = None


# --- root fields --------------------------------------------------------------------------------


@strawberry.type
class IdentityQuery:
    @strawberry.field(description="The signed-in caller, or null.")
    def me(self, info: Info) -> UserNode | None:
        principal = info.context.principal
        return UserNode.from_model(principal.user) if principal else None

    @strawberry.field(description="Signed-in accounts, newest first. Admins only.")
    async def users(
        self,
        info: Info,
        first: int = 20,
        after: str | None = None,
        role: Role | None = None,
    ) -> Connection[UserNode]:
        info.context.require_role(Role.ADMIN)
        query = UserModel.all() if role is None else UserModel.filter(role=role)
        return await keyset_page(query, order=["-id"], first=first, after=after, to_node=UserNode.from_model)

    @strawberry.field(description="City departments that handle cases.")
    async def departments(self, first: int = 50, after: str | None = None) -> Connection[DepartmentNode]:
        return await keyset_page(
            DepartmentModel.all(), order=["code"], first=first, after=after, to_node=DepartmentNode.from_model
        )


@strawberry.type
class IdentityMutation:
    @payload_mutation("An app installation starts as an anonymous resident; no personal data needed.")
    async def device_register(self, info: Info, input: DeviceRegisterInput) -> AuthPayload:
        return AuthPayload.of(await service.register_device(input.device_key, info.context.identity))

    @payload_mutation("Staff and chiefs sign in with a username or phone number and a password.")
    async def sign_in(self, info: Info, input: SignInInput) -> AuthPayload:
        return AuthPayload.of(await service.sign_in(input.login, input.password, info.context.identity))

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
        challenge = await service.start_phone_verification(principal.user, input.phone, info.context.identity)
        return PhoneVerificationStartPayload(expires_at=challenge.expires_at)

    @payload_mutation("Prove the phone number with the code that was sent to it.")
    async def phone_verification_confirm(
        self, info: Info, input: PhoneVerificationConfirmInput
    ) -> UserPayload:
        principal = info.context.require_principal()
        user = await service.confirm_phone(principal.user, input.phone, input.code, info.context.identity)
        return UserPayload(user=UserNode.from_model(user))

    @payload_mutation("Create a staff, dispatcher, chief or admin account. Admins only.")
    async def user_create(self, info: Info, input: UserCreateInput) -> UserPayload:
        info.context.require_role(Role.ADMIN)
        department_id = None
        if input.department_id is not None:
            department_id = decode_id(input.department_id, "Department", "input", "departmentId")
            if not await DepartmentModel.exists(id=department_id):
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
