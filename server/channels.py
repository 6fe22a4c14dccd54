"""Notification channels and the one-time code sender, built from the settings (issue 14).

`notification_channels(settings)` gives the delivery worker its "push" and "sms" channels;
`otp_sender(settings)` is the identity config's code sender; `refuse_unsafe_production(settings)`
stops a production server that would send codes to its log."""

from __future__ import annotations

from delivery.channels import Channel
from identity.config import LogOtpSender, OtpSender
from notifications.otp import SmsOtpSender
from notifications.push import PushChannel, PushConfig, vapid_key_from
from notifications.sms.aliyun import AliyunSms
from notifications.sms.base import SmsProvider, SmsTemplates
from notifications.sms.channel import SmsChannel
from notifications.sms.log import LogSms
from notifications.sms.tencent import TencentSms
from server.settings import Settings


class ConfigurationError(RuntimeError):
    """Settings a server must not start with."""


def refuse_unsafe_production(settings: Settings) -> None:
    """In production one-time codes must leave by SMS through a real provider, never the log."""
    if settings.debug:
        return
    if settings.otp_sender == "log":
        raise ConfigurationError(
            "ENVIRONMENT=production with OTP_SENDER=log: one-time codes would only be written to the "
            "log. Set OTP_SENDER=sms and SMS_PROVIDER=aliyun or tencent with its credentials "
            "(docs/notification-channels.md)."
        )
    if settings.sms_provider == "log":
        raise ConfigurationError(
            "ENVIRONMENT=production with OTP_SENDER=sms and SMS_PROVIDER=log: one-time codes would only "
            "be written to the log. Set SMS_PROVIDER=aliyun or tencent with its credentials "
            "(docs/notification-channels.md)."
        )
    sms_provider(settings)  # missing credentials fail here, at startup


def sms_provider(settings: Settings) -> SmsProvider:
    if settings.sms_provider == "aliyun":
        if not (settings.aliyun_access_key_id and settings.aliyun_access_key_secret):
            raise ConfigurationError(
                "SMS_PROVIDER=aliyun needs ALIYUN_ACCESS_KEY_ID and ALIYUN_ACCESS_KEY_SECRET."
            )
        return AliyunSms(
            settings.aliyun_access_key_id,
            settings.aliyun_access_key_secret,
            endpoint=settings.aliyun_sms_endpoint,
            region=settings.aliyun_region,
            timeout_seconds=settings.sms_timeout_seconds,
        )
    if settings.sms_provider == "tencent":
        if not (settings.tencent_secret_id and settings.tencent_secret_key and settings.tencent_sms_app_id):
            raise ConfigurationError(
                "SMS_PROVIDER=tencent needs TENCENT_SECRET_ID, TENCENT_SECRET_KEY and TENCENT_SMS_APP_ID."
            )
        return TencentSms(
            settings.tencent_secret_id,
            settings.tencent_secret_key,
            settings.tencent_sms_app_id,
            endpoint=settings.tencent_sms_endpoint,
            region=settings.tencent_region,
            timeout_seconds=settings.sms_timeout_seconds,
        )
    return LogSms(reveal=settings.debug)


def push_config(settings: Settings) -> PushConfig | None:
    """None when no VAPID key is configured (Web Push is then off)."""
    key = vapid_key_from(settings.vapid_private_key, settings.vapid_private_key_file)
    if key is None:
        return None
    return PushConfig(
        vapid_key=key,
        subject=settings.vapid_subject,
        ttl_seconds=settings.push_ttl_seconds,
        allow_insecure=settings.push_allow_insecure,
    )


def notification_channels(settings: Settings) -> list[Channel]:
    """The delivery worker's channels for people: "sms" always, "push" when a VAPID key is set."""
    templates = SmsTemplates.load(settings.sms_templates_file)
    channels: list[Channel] = [SmsChannel(sms_provider(settings), templates)]
    push = push_config(settings)
    if push is not None:
        channels.append(PushChannel(push))
    return channels


def otp_sender(settings: Settings) -> OtpSender:
    if settings.otp_sender == "sms":
        return SmsOtpSender()
    return LogOtpSender(reveal=settings.debug)
