"""The development SMS provider: writes the message to the log instead of sending it. With
`reveal=False` (production) the log shows neither the phone number nor the parameters."""

from __future__ import annotations

import logging

from delivery.channels import Outcome, Result
from notifications.sms.base import SmsMessage, mask_phone

log = logging.getLogger("notifications.sms")


class LogSms:
    name = "log"

    def __init__(self, *, reveal: bool) -> None:
        self.reveal = reveal

    async def send(self, message: SmsMessage) -> Outcome:
        if self.reveal:
            phone, params = message.phone, dict(message.params)
        else:
            phone, params = mask_phone(message.phone), {name: "***" for name, _ in message.params}
        log.warning(
            "SMS %s (%s) to %s: %s (development provider, no SMS sent)",
            message.kind,
            message.language,
            phone,
            params,
        )
        return Outcome(Result.DELIVERED)
