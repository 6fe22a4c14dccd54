from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Protocol

log = logging.getLogger("identity.otp")


class OtpSender(Protocol):
    async def send(self, phone: str, code: str) -> None: ...


class LogOtpSender:
    """Development sender: writes the code to the log instead of sending an SMS."""

    async def send(self, phone: str, code: str) -> None:
        log.warning("one-time code for %s: %s (development sender, no SMS sent)", phone, code)


@dataclass(frozen=True)
class IdentityConfig:
    secret_key: str
    access_token_seconds: int = 15 * 60
    refresh_token_seconds: int = 30 * 24 * 3600
    otp_seconds: int = 5 * 60
    otp_max_attempts: int = 5
    otp_per_phone_per_hour: int = 5
    sign_in_failures: int = 5
    sign_in_window_seconds: int = 15 * 60
    otp_sender: OtpSender = field(default_factory=LogOtpSender)
