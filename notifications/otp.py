"""One-time codes through the SMS channel: the code becomes an "sms" delivery, written now and sent by
the delivery worker at once (codes are exempt from quiet hours; the worker is nudged when it runs in
this process)."""

from __future__ import annotations

import hashlib

from delivery.service import enqueue, new_delivery
from identity.models import OtpChallenge
from notifications.models import Language, NotificationPreference


class SmsOtpSender:
    """An `identity.config.OtpSender` that texts the code, in the person's language."""

    async def send(self, phone: str, code: str) -> None:
        # The challenge was just written for this number: it names the person asking.
        challenge = await OtpChallenge.filter(phone=phone).order_by("-id").first()
        user_id = challenge.user_id if challenge is not None else 0
        preference = await NotificationPreference.get_or_none(user_id=user_id) if user_id else None
        language = preference.language if preference is not None else Language.ZH_CN
        # The number travels in the payload (it is not the person's yet) and is scrubbed with the
        # code once the delivery is finished. Codes to one number go out in order.
        ordering_key = "otp:" + hashlib.sha256(phone.encode()).hexdigest()[:32]
        payload = {"phone": phone, "template": "otp", "params": {"code": code}, "language": str(language)}
        await enqueue(new_delivery("sms", user_id, payload, ordering_key=ordering_key))
