"""Media storage: key shape, traversal refusal, atomic puts, area separation; the protocol's behaviour
against both stores (the local folder and an S3 bucket on moto's server)."""

from __future__ import annotations

import errno
import hashlib
import os
import secrets
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import aiofiles.os
import pytest
import pytest_asyncio

from media.s3 import S3Config, S3Storage
from media.storage import Area, InvalidKey, LocalStorage, Storage, content_key, validate_key
from tests.media.s3_server import REGION, S3Server

DIGEST = hashlib.sha256(b"evidence").hexdigest()
ORIGINAL = content_key(Area.ORIGINALS, DIGEST, "heic")
DISPLAY = content_key(Area.DERIVATIVES, DIGEST, "jpg", "display")


@pytest.fixture
def storage(tmp_path: Path) -> LocalStorage:
    return LocalStorage(tmp_path / "media", fsync=True)


@pytest_asyncio.fixture(params=["local", "s3"])
async def any_storage(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Storage]:
    """Each store, for what the protocol promises whatever the store."""
    if request.param == "local":
        yield LocalStorage(tmp_path / "media", fsync=True)
        return
    server: S3Server = request.getfixturevalue("s3_server")
    bucket = server.new_bucket(f"storage-{secrets.token_hex(4)}")
    s3 = S3Storage(
        S3Config(
            server.endpoint, bucket, REGION, server.access_key_id, server.secret_access_key, path_style=True
        )
    )
    yield s3
    await s3.close()


async def read_all(storage: Storage, key: str) -> bytes:
    return b"".join([chunk async for chunk in storage.read_chunks(key, chunk_size=3)])


def test_keys_are_sharded_by_digest_and_split_by_area() -> None:
    shard = f"{DIGEST[:2]}/{DIGEST[2:4]}"
    display = content_key(Area.DERIVATIVES, DIGEST, "jpg", "display")
    original = content_key(Area.ORIGINALS, DIGEST, "heic")
    assert display == f"derivatives/{shard}/{DIGEST}-display.jpg"
    assert original == f"originals/{shard}/{DIGEST}.heic"


@pytest.mark.parametrize(
    "key",
    [
        "../../etc/passwd",
        "/etc/passwd",
        f"derivatives/{DIGEST[:2]}/{DIGEST[2:4]}/../../../originals/{DIGEST}.heic",
        f"derivatives/{DIGEST[:2]}/{DIGEST[2:4]}/{DIGEST}.jpg/../x.jpg",
        f"derivatives/{DIGEST[:2]}/{DIGEST[2:4]}/{DIGEST.upper()}.jpg",
        f"derivatives/00/00/{DIGEST}.jpg",  # shard does not match the digest
        f"public/{DIGEST[:2]}/{DIGEST[2:4]}/{DIGEST}.jpg",
        f"derivatives/{DIGEST[:2]}/{DIGEST[2:4]}/{DIGEST}.jpg\x00.php",
        f"derivatives\\{DIGEST[:2]}\\{DIGEST[2:4]}\\{DIGEST}.jpg",
        DISPLAY + "\n",
    ],
)
def test_anything_but_a_built_key_is_refused(key: str) -> None:
    with pytest.raises(InvalidKey):
        validate_key(key)


@pytest.mark.parametrize(
    ("digest", "ext", "variant"),
    [
        ("../../etc/passwd", "jpg", None),
        (DIGEST, "j/pg", None),
        (DIGEST, "jpg", "../x"),
        (DIGEST[:-1], "jpg", None),
    ],
)
def test_content_key_refuses_malformed_parts(digest: str, ext: str, variant: str | None) -> None:
    with pytest.raises(InvalidKey):
        content_key(Area.DERIVATIVES, digest, ext, variant)


async def test_storage_methods_refuse_a_traversal_key(any_storage: Storage, tmp_path: Path) -> None:
    (tmp_path / "secret").write_bytes(b"x")
    for call in (any_storage.size, any_storage.exists, any_storage.delete):
        with pytest.raises(InvalidKey):
            await call("../secret")
    with pytest.raises(InvalidKey):
        await any_storage.put_bytes("../secret", b"overwritten")
    with pytest.raises(InvalidKey):
        await any_storage.put_file("../secret", tmp_path / "secret")
    assert (tmp_path / "secret").read_bytes() == b"x"


async def test_put_read_size_exists_delete_round_trip(any_storage: Storage) -> None:
    storage = any_storage
    await storage.put_bytes(DISPLAY, b"jpeg bytes")

    assert await read_all(storage, DISPLAY) == b"jpeg bytes"
    assert await storage.size(DISPLAY) == 10
    assert await storage.exists(DISPLAY)
    assert await storage.delete(DISPLAY) is True
    assert not await storage.exists(DISPLAY)
    assert await storage.delete(DISPLAY) is False  # a retried delete is harmless
    with pytest.raises(FileNotFoundError):
        await storage.size(DISPLAY)
    with pytest.raises(FileNotFoundError):
        await read_all(storage, DISPLAY)
    await storage.check()  # usable


async def test_put_file_moves_a_finished_file_into_place(any_storage: Storage, tmp_path: Path) -> None:
    upload = tmp_path / "upload.tmp"
    upload.write_bytes(b"original photo")

    await any_storage.put_file(ORIGINAL, upload)

    assert not upload.exists()
    assert await read_all(any_storage, ORIGINAL) == b"original photo"


async def test_put_file_copies_across_filesystems(
    storage: LocalStorage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    upload = tmp_path / "upload.tmp"
    upload.write_bytes(b"from another disk")
    real_replace = aiofiles.os.replace

    async def replace(source: os.PathLike[str], target: os.PathLike[str]) -> None:
        if Path(source) == upload:
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        await real_replace(source, target)

    monkeypatch.setattr(aiofiles.os, "replace", replace)

    await storage.put_file(ORIGINAL, upload)

    assert not upload.exists()
    assert await read_all(storage, ORIGINAL) == b"from another disk"


async def test_a_failed_put_leaves_the_old_object_and_no_partial_file(
    storage: LocalStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    await storage.put_bytes(DISPLAY, b"old, complete")

    async def failing_replace(source: os.PathLike[str], target: os.PathLike[str]) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(aiofiles.os, "replace", failing_replace)
    with pytest.raises(OSError, match="No space"):
        await storage.put_bytes(DISPLAY, b"new" * 100_000)

    assert await read_all(storage, DISPLAY) == b"old, complete"
    directory = storage.public_root / DIGEST[:2] / DIGEST[2:4]
    assert sorted(path.name for path in directory.iterdir()) == [f"{DIGEST}-display.jpg"]


async def test_originals_are_private_and_not_public(storage: LocalStorage, tmp_path: Path) -> None:
    upload = tmp_path / "upload.tmp"
    upload.write_bytes(b"with GPS")
    await storage.put_file(ORIGINAL, upload)
    await storage.put_bytes(DISPLAY, b"no GPS")

    public = sorted(path.name for path in storage.public_root.rglob("*") if path.is_file())
    assert public == [f"{DIGEST}-display.jpg"]
    original = storage.public_root.parent / ORIGINAL
    assert original.is_file()
    assert not original.resolve().is_relative_to(storage.public_root.resolve())
    assert stat.S_IMODE(original.stat().st_mode) == 0o600
    assert stat.S_IMODE((storage.public_root / DISPLAY.split("/", 1)[1]).stat().st_mode) == 0o644
