from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Protocol

log = logging.getLogger("identity.otp")


class OtpSender(Protocol):
    async def send(self, phone: str, code: str) -> None: ...


class LogOtpSender:
    """Development sender: writes the code to the log instead of sending an SMS. With `reveal=False`
    (ENVIRONMENT=production) the log shows neither the number nor the code."""

    def __init__(self, *, reveal: bool = True) -> None:
        self.reveal = reveal

    async def send(self, phone: str, code: str) -> None:
        if not self.reveal:
            log.warning("one-time code for ***%s (development sender, no SMS sent)", phone[-2:])
            return
        log.warning("one-time code for %s: %s (development sender, no SMS sent)", phone, code)


@dataclass(frozen=True)
class IdentityConfig:
    secret_key: str
    access_token_seconds: int = 15 * 60
    refresh_token_seconds: int = 30 * 24 * 3600
    # A refresh token presented again this soon after its rotation (two requests racing, a retry after a
    # lost answer) gets the same new pair; later, it is a copy and ends the session.
    refresh_grace_seconds: int = 30
    # How often a quiet live subscription checks that its session still stands (each event checks too).
    session_recheck_seconds: float = 30
    otp_seconds: int = 5 * 60
    otp_max_attempts: int = 5
    # One-time codes per hour. Per number counts one account's requests only, so strangers asking for
    # someone's number never use up that person's own; the per-address and per-account limits stop them.
    otp_per_phone_per_hour: int = 5
    # Across all accounts, against SMS bombing; one address alone (20) never reaches it.
    otp_per_phone_all_accounts_per_hour: int = 30
    otp_per_account_per_hour: int = 10
    otp_per_address_per_hour: int = 20
    otp_phones_per_account_per_day: int = 3
    sign_in_failures: int = 5  # per account (or unknown login) in the window below
    sign_in_failures_per_address: int = 50  # per client address; many people may share one
    sign_in_window_seconds: int = 15 * 60
    otp_sender: OtpSender = field(default_factory=LogOtpSender)
