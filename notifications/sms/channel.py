"""The "sms" channel: renders a delivery through the templates file and sends it with a provider.

Payloads: {"template": <message kind>, "params": {...}, "language": "zh-CN" | "en"} with
`target_id` the person (their phone is read at send time), or, for one-time codes, the same with a
"phone" of its own. A finished one-time code delivery keeps neither the code nor the number."""

from __future__ import annotations

import logging
from typing import Any

from delivery.channels import Outcome, Result
from delivery.models import Delivery, DeliveryStatus
from identity.models import User
from notifications.sms.base import SmsProvider, SmsTemplates, TemplateError, mask_phone

log = logging.getLogger("notifications.sms")

OTP_KIND = "otp"


def scrubbed(payload: dict[str, Any]) -> dict[str, Any]:
    """The payload without its secrets: a one-time code's code and phone number."""
    clean = dict(payload)
    if "phone" in clean:
        clean["phone"] = mask_phone(str(clean["phone"]))
    if clean.get("template") == OTP_KIND and isinstance(clean.get("params"), dict):
        clean["params"] = {name: "***" for name in clean["params"]}
    return clean


class SmsChannel:
    name = "sms"

    def __init__(self, provider: SmsProvider, templates: SmsTemplates) -> None:
        self.provider = provider
        self.templates = templates

    async def send(self, delivery: Delivery) -> Outcome:
        payload = delivery.payload if isinstance(delivery.payload, dict) else {}
        phone = payload.get("phone")
        if not phone:
            user = await User.get_or_none(id=delivery.target_id)
            phone = user.phone if user is not None else None
        if not phone:
            return Outcome(Result.FAILED, error="no phone number to send to")
        try:
            message = self.templates.message(
                self.provider.name,
                str(phone),
                str(payload.get("template", "")),
                str(payload.get("language") or "zh-CN"),
                payload.get("params") or {},
            )
        except TemplateError as exc:
            return Outcome(Result.FAILED, error=str(exc))
        outcome = await self.provider.send(message)
        if outcome.result is not Result.DELIVERED:
            # The provider's words only: never the number or the parameters.
            log.info("SMS %s to %s: %s", message.kind, mask_phone(message.phone), outcome.error)
        return outcome

    async def aclose(self) -> None:
        """Close the provider's HTTP client (the worker's shutdown)."""
        aclose = getattr(self.provider, "aclose", None)
        if aclose is not None:
            await aclose()

    async def gone(self, delivery: Delivery) -> None:
        """A phone number is never "gone" to a provider; nothing to remove."""

    async def after_attempt(self, delivery: Delivery, outcome: Outcome) -> None:
        """Once a one-time code's delivery is finished (sent, refused or given up), forget the code."""
        payload = delivery.payload if isinstance(delivery.payload, dict) else {}
        if "phone" not in payload and payload.get("template") != OTP_KIND:
            return
        if outcome.result is Result.RETRY:
            current = await Delivery.get_or_none(id=delivery.id).only("id", "status")
            if current is None or current.status == DeliveryStatus.PENDING:
                return
        clean = scrubbed(payload)
        await Delivery.filter(id=delivery.id).update(payload=clean)
        delivery.payload = clean
