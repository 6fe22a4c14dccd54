"""Limits and timings of photo intake, built by the server from its settings."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import timedelta, tzinfo
from zoneinfo import ZoneInfo

from media.images import DEFAULT_MAX_PIXELS


@dataclass(frozen=True)
class MediaConfig:
    max_bytes: int = 20 * 1024 * 1024  # per photo; a 48 MP HEIC is about 10 MB
    max_pixels: int = DEFAULT_MAX_PIXELS
    # An upload session nobody finished, and a photo nothing attached, are removed after these.
    upload_ttl: timedelta = timedelta(hours=24)
    unattached_ttl: timedelta = timedelta(hours=24)
    # A chunk in flight holds its upload for this long without progress; then a retry may take over.
    chunk_lease: timedelta = timedelta(seconds=30)
    # Photo processing threads: CPU-bound, so one per core; more only queue in memory.
    workers: int = field(default_factory=lambda: os.cpu_count() or 1)
    # EXIF times without an offset (older Android cameras) are read in this zone.
    camera_timezone: tzinfo = field(default_factory=lambda: ZoneInfo("UTC"))
