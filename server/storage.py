"""The media store this deployment uses (MEDIA_STORAGE), and its startup check (docs/storage.md)."""

from __future__ import annotations

from media.s3 import S3Config, S3Error, S3Storage
from media.storage import LocalStorage, Storage, StorageUnavailable
from server.channels import ConfigurationError
from server.settings import Settings


def media_storage(settings: Settings) -> Storage:
    """The store the settings choose; missing or malformed S3 settings are a ConfigurationError."""
    if settings.media_storage == "local":
        return LocalStorage(settings.media_root)
    missing = [
        name
        for name, value in (
            ("S3_BUCKET", settings.s3_bucket),
            ("S3_ACCESS_KEY_ID", settings.s3_access_key_id),
            ("S3_SECRET_ACCESS_KEY", settings.s3_secret_access_key),
        )
        if not value
    ]
    if missing:
        raise ConfigurationError(f"MEDIA_STORAGE=s3 needs {', '.join(missing)} (docs/storage.md).")
    assert settings.s3_bucket and settings.s3_access_key_id and settings.s3_secret_access_key
    endpoint = settings.s3_endpoint or f"https://s3.{settings.s3_region}.amazonaws.com"
    try:
        config = S3Config(
            endpoint=endpoint,
            bucket=settings.s3_bucket,
            region=settings.s3_region,
            access_key_id=settings.s3_access_key_id,
            secret_access_key=settings.s3_secret_access_key,
            path_style=settings.s3_path_style,
            prefix=settings.s3_prefix,
            part_size=settings.s3_part_bytes,
        )
    except ValueError as exc:
        raise ConfigurationError(f"S3_PREFIX: {exc}") from exc
    return S3Storage(config)


async def check_media_storage(settings: Settings, storage: Storage) -> None:
    """Refuse to start on a store that cannot be used, with the setting to look at."""
    try:
        await storage.check()
    except S3Error as exc:
        raise ConfigurationError(_s3_advice(settings, exc)) from exc
    except StorageUnavailable as exc:
        raise ConfigurationError(f"MEDIA_ROOT: {exc}") from exc


def _s3_advice(settings: Settings, exc: S3Error) -> str:
    where = f"bucket {settings.s3_bucket!r} at {settings.s3_endpoint or 'AWS'}"
    if exc.status == 0:
        hint = "cannot reach the store: check S3_ENDPOINT"
    elif exc.status == 404:
        hint = "no such bucket: check S3_BUCKET (and S3_PATH_STYLE, S3_REGION)"
    elif exc.status == 403:
        hint = "access refused: check S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY (and their rights)"
    elif exc.status in (301, 307, 400):
        hint = "the store wants another address: check S3_REGION, S3_ENDPOINT and S3_PATH_STYLE"
    else:
        hint = "the store answered an error"
    return f"MEDIA_STORAGE=s3: {hint} ({where}: {exc})."
