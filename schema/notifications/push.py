"""Web Push subscriptions of the signed-in caller, and the key browsers subscribe with."""

from __future__ import annotations

from datetime import datetime

import strawberry

from notifications import push
from notifications.models import PushSubscription
from schema.context import Info
from schema.errors import UserError, payload_mutation


@strawberry.type(description="A browser's or app's Web Push subscription (keys are never shown).")
class WebPushSubscription:
    endpoint: str
    user_agent: str
    created_at: datetime
    last_success_at: datetime | None = strawberry.field(
        description="When a message last reached the push service."
    )

    @classmethod
    def from_model(cls, row: PushSubscription) -> WebPushSubscription:
        return cls(
            endpoint=row.endpoint,
            user_agent=row.user_agent,
            created_at=row.created_at,
            last_success_at=row.last_success_at,
        )


@strawberry.input(description="The keys of the browser's PushSubscription.toJSON().")
class PushSubscriptionKeysInput:
    p256dh: str = strawberry.field(description="The receiver's P-256 public key, base64url.")
    auth: str = strawberry.field(description="The 16-byte auth secret, base64url.")


@strawberry.input
class PushSubscriptionRegisterInput:
    endpoint: str = strawberry.field(description="The push service URL from PushSubscription.endpoint.")
    keys: PushSubscriptionKeysInput
    user_agent: str = ""


@strawberry.input
class PushSubscriptionRemoveInput:
    endpoint: str


@strawberry.type
class PushSubscriptionPayload:
    subscription: WebPushSubscription | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class PushSubscriptionRemovePayload:
    removed: bool = False
    user_errors: list[UserError] = strawberry.field(default_factory=list)


def _settings(info: Info) -> object:
    assert info.context.services is not None
    return info.context.services.settings


@strawberry.type
class PushQuery:
    @strawberry.field(
        description="The VAPID public key (base64url) to pass to PushManager.subscribe as "
        "applicationServerKey; null when this server sends no Web Push."
    )
    def web_push_public_key(self, info: Info) -> str | None:
        settings = _settings(info)
        return push.web_push_public_key(
            getattr(settings, "vapid_private_key", None), getattr(settings, "vapid_private_key_file", None)
        )

    @strawberry.field(description="The caller's own Web Push subscriptions.")
    async def my_push_subscriptions(self, info: Info) -> list[WebPushSubscription]:
        user = info.context.require_user()
        return [WebPushSubscription.from_model(row) for row in await push.subscriptions_of(user)]


@strawberry.type
class PushMutation:
    @payload_mutation("Save this browser's Web Push subscription for the signed-in caller.")
    async def push_subscription_register(
        self, info: Info, input: PushSubscriptionRegisterInput
    ) -> PushSubscriptionPayload:
        user = info.context.require_user()
        row = await push.register_subscription(
            user,
            input.endpoint,
            input.keys.p256dh,
            input.keys.auth,
            input.user_agent,
            allow_insecure=bool(getattr(_settings(info), "push_allow_insecure", False)),
        )
        return PushSubscriptionPayload(subscription=WebPushSubscription.from_model(row))

    @payload_mutation("Stop Web Push to this endpoint (the caller's own subscription).")
    async def push_subscription_remove(
        self, info: Info, input: PushSubscriptionRemoveInput
    ) -> PushSubscriptionRemovePayload:
        await push.remove_subscription(info.context.require_user(), input.endpoint)
        return PushSubscriptionRemovePayload(removed=True)
