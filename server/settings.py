"""Settings from environment variables, with defaults that work on a fresh machine.

The embedded default keeps everything under `./data/` (or `DATA_DIR`): a SQLite database, the media
folder and a signing secret generated on first run. Production points `DATABASE_URL` at PostgreSQL.

A field that names an environment variable (`validation_alias`) is read from it; an unset or empty
variable leaves the default. The other fields are the code's own choices: tests and benchmarks
pass them as arguments, which always win over the environment.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from webhooks.addresses import AllowList

DATA_DIR = Path(os.environ.get("DATA_DIR", "data"))


def default_database_url() -> str:
    return f"sqlite://{DATA_DIR / 'envcase.sqlite3'}"


def _generated_secret_key() -> str:
    """The JWT signing secret when SECRET_KEY is not set: generated once and kept in the data folder."""
    path = DATA_DIR / "secret.key"
    if path.exists():
        return path.read_text().strip()
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    # Created with owner-only permissions; an existing file (another process won the race) wins.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as f:
        f.write(key)
    return key


class _NamedVariables(EnvSettingsSource):
    """The environment, for the fields that name their variable only."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        if field.validation_alias is None:
            return None, field_name, False
        return super().get_field_value(field, field_name)


class _FromEnvironment(BaseSettings):
    model_config = SettingsConfigDict(
        frozen=True, env_ignore_empty=True, str_strip_whitespace=True, validate_by_name=True
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, _NamedVariables(settings_cls)


class Limits(_FromEnvironment):
    # a photo (20 MB) plus multipart overhead
    max_body_bytes: int = Field(25 * 1024 * 1024, validation_alias="MAX_BODY_BYTES")
    max_query_depth: int = Field(12, validation_alias="MAX_QUERY_DEPTH")
    max_query_tokens: int = 2000
    max_aliases: int = 15
    max_page_size: int = 100
    # per client address: shared by every process through Redis (REDIS_URL), else per process
    requests_per_minute: int = Field(600, validation_alias="REQUESTS_PER_MINUTE")
    sign_in_failures: int = 5  # per account (any spelling of its login) within the window below
    # per client address within the same window; many people may share one address
    sign_in_failures_per_address: int = Field(50, validation_alias="SIGN_IN_FAILURES_PER_ADDRESS")
    sign_in_window_seconds: int = 15 * 60
    # per identity, counted in the database
    report_submissions_per_hour: int = Field(10, validation_alias="REPORT_SUBMISSIONS_PER_HOUR")


class Settings(_FromEnvironment):
    database_url: str = Field(default_factory=default_database_url, validation_alias="DATABASE_URL")
    media_root: Path = Field(default_factory=lambda: DATA_DIR / "media", validation_alias="MEDIA_ROOT")
    secret_key: str = Field(default_factory=_generated_secret_key, validation_alias="SECRET_KEY")
    environment: Literal["development", "production"] = Field("development", validation_alias="ENVIRONMENT")
    # comma-separated in the environment
    allowed_origins: Annotated[tuple[str, ...], NoDecode] = Field((), validation_alias="ALLOWED_ORIGINS")
    # Redis: live updates across processes, and request budgets shared by every process (else per process)
    redis_url: str | None = Field(None, validation_alias="REDIS_URL")
    # Operations (docs/deployment.md): the bearer token of /metrics (unset: no /metrics at all)
    metrics_token: str | None = Field(None, validation_alias="METRICS_TOKEN")
    # OpenTelemetry traces to this OTLP/HTTP collector (needs the `otel` extra); unset: no tracing
    otel_exporter_otlp_endpoint: str | None = Field(None, validation_alias="OTEL_EXPORTER_OTLP_ENDPOINT")
    otel_service_name: str = Field("envcase", validation_alias="OTEL_SERVICE_NAME")
    access_token_seconds: int = 15 * 60
    refresh_token_seconds: int = 30 * 24 * 3600
    otp_seconds: int = 5 * 60
    otp_max_attempts: int = 5
    otp_per_phone_per_hour: int = 5
    # one-time code requests per client address and hour (a carrier's NAT may put many people on one)
    otp_per_address_per_hour: int = Field(20, validation_alias="OTP_PER_ADDRESS_PER_HOUR")
    # a refresh token presented again this soon after its rotation gets the same new pair
    refresh_grace_seconds: int = Field(30, ge=0, validation_alias="REFRESH_GRACE_SECONDS")
    # a quiet live subscription checks its session that often (each event checks too)
    session_recheck_seconds: float = Field(30, gt=0, validation_alias="SESSION_RECHECK_SECONDS")
    limits: Limits = Field(default_factory=Limits)
    photo_max_bytes: int = Field(20 * 1024 * 1024, validation_alias="PHOTO_MAX_BYTES")
    photo_max_pixels: int = Field(50_000_000, validation_alias="PHOTO_MAX_PIXELS")
    # an unfinished resumable upload is removed after this
    upload_expiry_seconds: int = Field(24 * 3600, validation_alias="UPLOAD_EXPIRY_SECONDS")
    # a chunk's hold on its upload: after a process dies mid-chunk, another takes the upload over this
    # much later (each live chunk renews it)
    upload_chunk_lease_seconds: float = Field(30, gt=0, validation_alias="UPLOAD_CHUNK_LEASE_SECONDS")
    # a photo nothing references is removed after this
    photo_unattached_expiry_seconds: int = Field(
        24 * 3600, validation_alias="PHOTO_UNATTACHED_EXPIRY_SECONDS"
    )
    # Where photos live (docs/storage.md): the local folder MEDIA_ROOT, or an S3-compatible bucket.
    # Uploads in progress are staged under MEDIA_ROOT either way.
    media_storage: Literal["local", "s3"] = Field("local", validation_alias="MEDIA_STORAGE")
    s3_endpoint: str | None = Field(None, validation_alias="S3_ENDPOINT")  # None: AWS in S3_REGION
    s3_bucket: str | None = Field(None, validation_alias="S3_BUCKET")
    s3_region: str = Field("us-east-1", validation_alias="S3_REGION")
    s3_access_key_id: str | None = Field(None, validation_alias="S3_ACCESS_KEY_ID")
    s3_secret_access_key: str | None = Field(None, validation_alias="S3_SECRET_ACCESS_KEY")
    # https://host/bucket/key (MinIO) rather than https://bucket.host/key (AWS, OSS, COS)
    s3_path_style: bool = Field(False, validation_alias="S3_PATH_STYLE")
    s3_prefix: str = Field("", validation_alias="S3_PREFIX")  # e.g. "envcase/"
    # a larger photo goes as a multipart upload in parts of this size (at least 5 MiB)
    s3_part_bytes: int = 8 * 1024 * 1024
    # > 0: this process also sweeps expired media that often
    media_sweep_seconds: int = Field(0, validation_alias="MEDIA_SWEEP_SECONDS")
    # zone of EXIF capture times that carry no offset
    photo_camera_timezone: str = Field("UTC", validation_alias="PHOTO_CAMERA_TIMEZONE")
    # calendar days a resolved case waits for its residents, then closes
    feedback_quiet_days: float = Field(7.0, ge=0, validation_alias="FEEDBACK_QUIET_DAYS")
    # > 0: this process also runs the escalation pass that often
    deadline_sweep_seconds: int = Field(0, validation_alias="DEADLINE_SWEEP_SECONDS")
    # > 0: this process also runs the retention job (docs/privacy.md, Retention) that often
    retention_sweep_seconds: int = Field(0, ge=0, validation_alias="RETENTION_SWEEP_SECONDS")
    # staff reads' access records are written together this long after the first of them (0: each
    # request writes its own); a killed process loses at most this much (docs/privacy.md)
    access_log_write_delay_ms: int = Field(100, ge=0, le=60_000, validation_alias="ACCESS_LOG_WRITE_DELAY_MS")
    # the city's retention periods (kernel/data/retention.json shape); None: the shipped ones
    retention_policy_path: Path | None = Field(None, validation_alias="RETENTION_POLICY_PATH")
    # the city's own message templates (notifications/data/templates.json shape); None: the shipped ones
    notification_templates_path: Path | None = Field(None, validation_alias="NOTIFICATION_TEMPLATES_PATH")
    # The city (kernel.city, docs/configuration.md): its calendar file (kernel/data/calendar_cn.json shape;
    # None: the shipped one, China's national holidays), its locale, and how often each process re-reads
    # the calendar years admins stored through the API
    city_calendar_path: Path | None = Field(None, validation_alias="CITY_CALENDAR")
    city_locale: str = Field("zh-CN", validation_alias="CITY_LOCALE")
    city_calendar_refresh_seconds: int = Field(60, ge=0, validation_alias="CITY_CALENDAR_REFRESH_SECONDS")
    # Signboards (公示牌, docs/patrols.md): how chiefs' names are published (FULL, SURNAME: surname and
    # position, POSITION: position only), the chief office's public phone, the complaint link ("{code}" is
    # the area's code; also the QR payload), and how long a process serves a cached signboard at most
    signboard_names: Literal["FULL", "SURNAME", "POSITION"] = Field(
        "SURNAME", validation_alias="SIGNBOARD_NAMES"
    )
    signboard_office_phone: str | None = Field(None, validation_alias="SIGNBOARD_OFFICE_PHONE")
    signboard_complaint_url: str | None = Field(None, validation_alias="SIGNBOARD_COMPLAINT_URL")
    signboard_cache_seconds: float = Field(60.0, ge=0, validation_alias="SIGNBOARD_CACHE_SECONDS")
    # > 0: this process also runs the patrol shortfall pass that often
    patrol_shortfall_sweep_seconds: int = Field(0, validation_alias="PATROL_SHORTFALL_SWEEP_SECONDS")
    # tell a chief short of patrols when their rule's period ends within this many days
    patrol_shortfall_days_before: int = Field(2, ge=0, validation_alias="PATROL_SHORTFALL_DAYS_BEFORE")
    # chiefs see residents' cases within this many metres of their river segments' lines
    river_case_buffer_m: float = Field(200.0, ge=0, le=5000, validation_alias="RIVER_CASE_BUFFER_M")

    # Web Push (docs/notification-channels.md): the VAPID key as PEM or base64url of the raw 32-byte
    # private scalar, or a file holding it; push is off when neither is set.
    vapid_private_key: str | None = Field(None, validation_alias="VAPID_PRIVATE_KEY")
    vapid_private_key_file: Path | None = Field(None, validation_alias="VAPID_PRIVATE_KEY_FILE")
    vapid_subject: str = Field("mailto:admin@example.org", validation_alias="VAPID_SUBJECT")
    # seconds a push service keeps an undelivered message
    push_ttl_seconds: int = Field(24 * 3600, ge=0, validation_alias="PUSH_TTL_SECONDS")
    # tests only: accept http:// and loopback/private push endpoints
    push_allow_insecure: bool = Field(False, validation_alias="PUSH_ALLOW_INSECURE")
    # who sends one-time codes: the development log, or an SMS through SMS_PROVIDER
    otp_sender: Literal["log", "sms"] = Field("log", validation_alias="OTP_SENDER")
    sms_provider: Literal["log", "aliyun", "tencent"] = Field("log", validation_alias="SMS_PROVIDER")
    # message kind + language -> provider template, and sign names (notifications/data/sms_templates.json)
    sms_templates_file: Path | None = Field(None, validation_alias="SMS_TEMPLATES_FILE")
    sms_timeout_seconds: float = Field(10, gt=0, validation_alias="SMS_TIMEOUT_SECONDS")
    aliyun_access_key_id: str | None = Field(None, validation_alias="ALIYUN_ACCESS_KEY_ID")
    aliyun_access_key_secret: str | None = Field(None, validation_alias="ALIYUN_ACCESS_KEY_SECRET")
    aliyun_sms_endpoint: str = Field("https://dysmsapi.aliyuncs.com/", validation_alias="ALIYUN_SMS_ENDPOINT")
    aliyun_region: str = Field("cn-hangzhou", validation_alias="ALIYUN_REGION")
    tencent_secret_id: str | None = Field(None, validation_alias="TENCENT_SECRET_ID")
    tencent_secret_key: str | None = Field(None, validation_alias="TENCENT_SECRET_KEY")
    tencent_sms_app_id: str | None = Field(None, validation_alias="TENCENT_SMS_APP_ID")
    tencent_sms_endpoint: str = Field(
        "https://sms.tencentcloudapi.com/", validation_alias="TENCENT_SMS_ENDPOINT"
    )
    tencent_region: str = Field("ap-guangzhou", validation_alias="TENCENT_REGION")
    # The delivery worker (webhooks, push, SMS): false when `python -m server worker` runs it instead
    delivery_worker_in_process: bool = Field(True, validation_alias="DELIVERY_WORKER_IN_PROCESS")
    delivery_batch: int = Field(100, ge=1, le=1000, validation_alias="DELIVERY_BATCH")
    # a claimed delivery comes back to the others this long after its worker died
    delivery_lease_seconds: float = Field(60, gt=0, validation_alias="DELIVERY_LEASE_SECONDS")
    delivery_max_attempts: int = Field(8, ge=1, validation_alias="DELIVERY_MAX_ATTEMPTS")
    delivery_backoff_base_seconds: float = Field(5, gt=0, validation_alias="DELIVERY_BACKOFF_BASE_SECONDS")
    delivery_backoff_cap_seconds: float = Field(3600, gt=0, validation_alias="DELIVERY_BACKOFF_CAP_SECONDS")
    # above the channels' own timeouts (webhooks, SMS: 10 s), so theirs answer first with their reason
    delivery_timeout_seconds: float = Field(12, gt=0, validation_alias="DELIVERY_TIMEOUT_SECONDS")
    delivery_concurrency: int = Field(32, ge=1, validation_alias="DELIVERY_CONCURRENCY")
    delivery_poll_seconds: float = Field(1, gt=0, validation_alias="DELIVERY_POLL_SECONDS")
    # published and planned outbox rows are deleted after this
    outbox_retention_days: float = Field(30, gt=0, validation_alias="OUTBOX_RETENTION_DAYS")
    # delivered and cancelled deliveries (with their attempts) are deleted after this
    delivery_retention_days: float = Field(30, gt=0, validation_alias="DELIVERY_RETENTION_DAYS")

    # Trusted documents (docs/api.md): run only the operations the apps registered (by documentId, or a
    # query whose sha256 is registered)
    trusted_documents_only: bool = Field(False, validation_alias="TRUSTED_DOCUMENTS_ONLY")
    # how long shared caches may keep an anonymous GET of a registered query
    trusted_documents_max_age_seconds: int = Field(
        60, ge=0, validation_alias="TRUSTED_DOCUMENTS_MAX_AGE_SECONDS"
    )
    # Exports (docs/exports.md): where files are written (shared by the servers that serve them and the
    # processes that run the jobs), rows per batch, how long a finished file and a download link live
    export_root: Path = Field(default_factory=lambda: DATA_DIR / "exports", validation_alias="EXPORT_ROOT")
    export_batch_rows: int = Field(5000, ge=1, le=100_000, validation_alias="EXPORT_BATCH_ROWS")
    export_keep_hours: float = Field(24, gt=0, validation_alias="EXPORT_KEEP_HOURS")
    export_link_seconds: int = Field(900, ge=1, validation_alias="EXPORT_LINK_SECONDS")
    # a running job comes back to the other runners this long after its runner died
    export_lease_seconds: float = Field(120, gt=0, validation_alias="EXPORT_LEASE_SECONDS")

    # Webhooks (docs/webhooks.md): addresses and networks a webhook may reach although they are
    # loopback, private, link-local or otherwise not public (comma-separated IPs or CIDRs)
    webhook_allowed_hosts: Annotated[tuple[str, ...], NoDecode] = Field(
        (), validation_alias="WEBHOOK_ALLOWED_HOSTS"
    )
    # one webhook call may take this long in all (connect, send, answer)
    webhook_timeout_seconds: float = Field(10.0, gt=0, le=120, validation_alias="WEBHOOK_TIMEOUT_SECONDS")
    # an endpoint is disabled after this many failed attempts in a row
    webhook_failure_limit: int = Field(20, ge=1, validation_alias="WEBHOOK_FAILURE_LIMIT")

    @field_validator("allowed_origins", "webhook_allowed_hosts", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(item.strip() for item in value.split(",") if item.strip())
        return value

    @field_validator("webhook_allowed_hosts")
    @classmethod
    def _addresses_or_networks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        AllowList.parse(value)  # a ValueError names the entry that is neither
        return value

    @property
    def debug(self) -> bool:
        return self.environment != "production"

    @classmethod
    def from_env(cls) -> Settings:
        """This deployment's settings: its environment variables over the defaults."""
        return cls()
