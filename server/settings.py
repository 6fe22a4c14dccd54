"""Settings from environment variables, with defaults that work on a fresh machine.

The embedded default keeps everything under `./data/`: a SQLite database, the media folder and a
signing secret generated on first run. Production points `DATABASE_URL` at PostgreSQL.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

DATA_DIR = Path(os.environ.get("DATA_DIR", "data"))


def _env(name: str, default: str) -> str:
    value = os.environ.get(name, "").strip()
    return value or default


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    return int(raw) if raw else default


def _env_days(name: str, default: float) -> float:
    days = float(_env(name, str(default)))
    if days < 0:
        raise ValueError(f"{name} must not be negative")
    return days


def _env_list(name: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in os.environ.get(name, "").split(",") if item.strip())


def _secret_key(data_dir: Path) -> str:
    """The JWT signing secret: from SECRET_KEY, else generated once and kept in the data folder."""
    given = os.environ.get("SECRET_KEY", "").strip()
    if given:
        return given
    path = data_dir / "secret.key"
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    # Created with owner-only permissions; an existing file (another process won the race) wins.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as f:
        f.write(key)
    return key


@dataclass(frozen=True)
class Limits:
    max_body_bytes: int = 25 * 1024 * 1024  # a photo (20 MB) plus multipart overhead
    max_query_depth: int = 12
    max_query_tokens: int = 2000
    max_aliases: int = 15
    max_page_size: int = 100
    requests_per_minute: int = 600  # per client address, per process
    sign_in_failures: int = 5  # per login within the window below, then throttled
    sign_in_window_seconds: int = 15 * 60
    report_submissions_per_hour: int = 10  # per identity, counted in the database


@dataclass(frozen=True)
class Settings:
    database_url: str
    media_root: Path
    secret_key: str
    environment: str = "development"
    allowed_origins: tuple[str, ...] = ()
    redis_url: str | None = None
    access_token_seconds: int = 15 * 60
    refresh_token_seconds: int = 30 * 24 * 3600
    otp_seconds: int = 5 * 60
    otp_max_attempts: int = 5
    otp_per_phone_per_hour: int = 5
    limits: Limits = field(default_factory=Limits)
    photo_max_bytes: int = 20 * 1024 * 1024
    photo_max_pixels: int = 50_000_000
    upload_expiry_seconds: int = 24 * 3600  # an unfinished resumable upload is removed after this
    photo_unattached_expiry_seconds: int = 24 * 3600  # a photo nothing references is removed after this
    media_sweep_seconds: int = 0  # > 0: this process also sweeps expired media that often
    photo_camera_timezone: str = "UTC"  # zone of EXIF capture times that carry no offset
    feedback_quiet_days: float = 7.0  # calendar days a resolved case waits for its residents, then closes
    deadline_sweep_seconds: int = 0  # > 0: this process also runs the escalation pass that often

    @property
    def debug(self) -> bool:
        return self.environment != "production"

    @classmethod
    def from_env(cls) -> Settings:
        environment = _env("ENVIRONMENT", "development")
        if environment not in ("development", "production"):
            raise ValueError("ENVIRONMENT must be 'development' or 'production'")
        limits = Limits(
            max_body_bytes=_env_int("MAX_BODY_BYTES", Limits.max_body_bytes),
            max_query_depth=_env_int("MAX_QUERY_DEPTH", Limits.max_query_depth),
            requests_per_minute=_env_int("REQUESTS_PER_MINUTE", Limits.requests_per_minute),
            report_submissions_per_hour=_env_int(
                "REPORT_SUBMISSIONS_PER_HOUR", Limits.report_submissions_per_hour
            ),
        )
        return cls(
            database_url=_env("DATABASE_URL", f"sqlite://{DATA_DIR / 'envcase.sqlite3'}"),
            media_root=Path(_env("MEDIA_ROOT", str(DATA_DIR / "media"))),
            secret_key=_secret_key(DATA_DIR),
            environment=environment,
            allowed_origins=_env_list("ALLOWED_ORIGINS"),
            redis_url=os.environ.get("REDIS_URL") or None,
            limits=limits,
            photo_max_bytes=_env_int("PHOTO_MAX_BYTES", cls.photo_max_bytes),
            photo_max_pixels=_env_int("PHOTO_MAX_PIXELS", cls.photo_max_pixels),
            upload_expiry_seconds=_env_int("UPLOAD_EXPIRY_SECONDS", cls.upload_expiry_seconds),
            photo_unattached_expiry_seconds=_env_int(
                "PHOTO_UNATTACHED_EXPIRY_SECONDS", cls.photo_unattached_expiry_seconds
            ),
            media_sweep_seconds=_env_int("MEDIA_SWEEP_SECONDS", cls.media_sweep_seconds),
            photo_camera_timezone=_env("PHOTO_CAMERA_TIMEZONE", cls.photo_camera_timezone),
            feedback_quiet_days=_env_days("FEEDBACK_QUIET_DAYS", cls.feedback_quiet_days),
            deadline_sweep_seconds=_env_int("DEADLINE_SWEEP_SECONDS", cls.deadline_sweep_seconds),
        )
