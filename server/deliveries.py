"""The delivery worker this deployment runs: its channels and planners, and its settings."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from datetime import timedelta

from delivery.channels import Channel
from delivery.config import DeliveryConfig
from delivery.planning import Planner
from delivery.worker import DeliveryWorker
from notifications.planner import notification_planner
from server.channels import notification_channels
from server.settings import Settings
from webhooks.addresses import AllowList
from webhooks.channel import WebhookChannel, WebhookConfig
from webhooks.planning import plan_webhooks

log = logging.getLogger("server")


def delivery_config(settings: Settings) -> DeliveryConfig:
    # A batch is sent `concurrency` at a time, each send within the timeout: the lease must outlast
    # the slowest batch, or another worker would take items back while they are still being sent.
    rounds = math.ceil(settings.delivery_batch / settings.delivery_concurrency)
    if settings.delivery_lease_seconds <= rounds * settings.delivery_timeout_seconds:
        raise ValueError(
            "DELIVERY_LEASE_SECONDS must be longer than DELIVERY_TIMEOUT_SECONDS times "
            f"ceil(DELIVERY_BATCH / DELIVERY_CONCURRENCY) = {rounds * settings.delivery_timeout_seconds:g} s"
        )
    return DeliveryConfig(
        batch=settings.delivery_batch,
        lease=timedelta(seconds=settings.delivery_lease_seconds),
        max_attempts=settings.delivery_max_attempts,
        backoff_base=settings.delivery_backoff_base_seconds,
        backoff_cap=settings.delivery_backoff_cap_seconds,
        timeout=settings.delivery_timeout_seconds,
        concurrency=settings.delivery_concurrency,
        poll=settings.delivery_poll_seconds,
        outbox_retention=timedelta(days=settings.outbox_retention_days),
        delivered_retention=timedelta(days=settings.delivery_retention_days),
    )


def channels(settings: Settings) -> Sequence[Channel]:
    """The channels that send: webhooks, and SMS and Web Push for people. A worker claims only
    deliveries of the channels listed."""
    webhook = WebhookChannel(
        WebhookConfig(
            allow=AllowList.parse(settings.webhook_allowed_hosts),
            timeout_seconds=settings.webhook_timeout_seconds,
            failure_limit=settings.webhook_failure_limit,
        )
    )
    return [webhook, *notification_channels(settings)]


def planners(settings: Settings) -> Sequence[Planner]:
    """What each outbox row becomes: a delivery per matching webhook endpoint; inbox rows, pushes and
    text messages for the people who should hear of it."""
    return [plan_webhooks, notification_planner(settings.notification_templates_path)]


def delivery_worker(settings: Settings) -> DeliveryWorker:
    return DeliveryWorker(channels(settings), planners(settings), delivery_config(settings))


async def close_channels(worker: DeliveryWorker) -> None:
    """Close the channels' HTTP clients (those with `aclose`) once the worker has stopped."""
    for channel in worker.channels.values():
        aclose = getattr(channel, "aclose", None)
        if aclose is not None:
            try:
                await aclose()
            except Exception:
                log.exception("closing the %s channel failed", channel.name)
