"""Where photo bytes live: a minimal async object store addressed by server-built keys.

Keys are content-addressed (`<area>/ab/cd/<sha256>[-<variant>].<ext>`) and built only by
`content_key` from a server-computed digest and a server-chosen extension: no part of a key ever
comes from a client's filename. Every method validates the key against one strict pattern, so a
key can never climb out of its area.

Two top-level areas keep private evidence apart from what may be published: a web server may serve
`derivatives/` as static files, and `originals/` is never under it.

`Storage` is deliberately small so an S3-compatible store (media.s3) implements it without touching callers.
A missing key raises FileNotFoundError in every implementation; a malformed one raises InvalidKey.
"""

from __future__ import annotations

import enum
import errno
import os
import re
import uuid
from collections.abc import AsyncIterable, AsyncIterator
from pathlib import Path
from typing import Protocol

import aiofiles
import aiofiles.os

CHUNK_SIZE = 256 * 1024

StrPath = str | os.PathLike[str]


class Area(enum.StrEnum):
    ORIGINALS = "originals"  # private evidence, with EXIF: only ever streamed to authorised staff
    DERIVATIVES = "derivatives"  # re-encoded, metadata-free renditions: public


class InvalidKey(ValueError):
    """A key that `content_key` could not have built (traversal attempt, wrong shape)."""


class StorageUnavailable(OSError):
    """The store cannot be reached or refused the request (not: the key is missing)."""


_KEY = re.compile(
    r"(?P<area>originals|derivatives)/(?P<a>[0-9a-f]{2})/(?P<b>[0-9a-f]{2})/"
    r"(?P<digest>[0-9a-f]{64})(?:-[a-z0-9]{1,16})?\.[a-z0-9]{1,5}"
)


def content_key(area: Area, sha256_hex: str, ext: str, variant: str | None = None) -> str:
    """The storage key of a blob: sharded by the first two bytes of its digest so no directory grows
    huge. Derivatives pass the original's digest and a variant ("display", "thumb").

    Raises InvalidKey if the digest, extension or variant has the wrong shape.
    """
    suffix = f"-{variant}" if variant is not None else ""
    return validate_key(f"{Area(area)}/{sha256_hex[:2]}/{sha256_hex[2:4]}/{sha256_hex}{suffix}.{ext}")


def validate_key(key: str) -> str:
    """Return `key` unchanged if it has exactly the shape `content_key` builds; else InvalidKey."""
    match = _KEY.fullmatch(key)
    if match is None or not match["digest"].startswith(match["a"] + match["b"]):
        raise InvalidKey(f"invalid storage key: {key[:200]!r}")
    return key


class Storage(Protocol):
    name: str  # "local" or "s3", for /healthz and the logs

    async def put_file(self, key: str, source: StrPath) -> None:
        """Store a finished local file under `key`, atomically, taking it over: `source` is gone
        afterwards. Readers see the old object or the whole new one, never a partial one."""
        ...

    async def put_bytes(self, key: str, data: bytes) -> None:
        """Store `data` under `key`, atomically."""
        ...

    def read_chunks(self, key: str, chunk_size: int = CHUNK_SIZE) -> AsyncIterator[bytes]:
        """Stream the object. Errors surface on the first iteration: call `size` first to answer
        404 before a response has started."""
        ...

    async def size(self, key: str) -> int: ...

    async def exists(self, key: str) -> bool: ...

    async def delete(self, key: str) -> bool:
        """Remove the object; False if it was already gone (so retries are harmless)."""
        ...

    async def check(self) -> None:
        """Raise StorageUnavailable unless the store can be used now (at startup and in /healthz)."""
        ...

    async def close(self) -> None: ...


# Evidence originals are readable by the app's own user only; derivatives by a static web server.
_FILE_MODES = {Area.ORIGINALS: 0o600, Area.DERIVATIVES: 0o644}
_DIR_MODES = {Area.ORIGINALS: 0o700, Area.DERIVATIVES: 0o755}


class LocalStorage:
    """`Storage` on a local filesystem (aiofiles). With `fsync=True` a completed put survives a
    power cut: the file's data and its directory entry are flushed before put returns."""

    name = "local"

    def __init__(self, root: StrPath, *, fsync: bool = True) -> None:
        self._root = Path(root).absolute()
        self._fsync = fsync
        for area in Area:
            (self._root / area).mkdir(parents=True, exist_ok=True, mode=_DIR_MODES[area])

    @property
    def public_root(self) -> Path:
        """The only directory that may be exposed as static files."""
        return self._root / Area.DERIVATIVES

    async def put_file(self, key: str, source: StrPath) -> None:
        final, area = await self._prepare(key)
        if self._fsync:
            await _fsync_path(source)
        await _chmod(source, _FILE_MODES[area])
        try:
            await aiofiles.os.replace(source, final)  # same filesystem: atomic, no copy
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
            await self._write_atomically(final, area, _file_chunks(source))
            await aiofiles.os.remove(source)
            return
        if self._fsync:
            await _fsync_path(final.parent)

    async def put_bytes(self, key: str, data: bytes) -> None:
        final, area = await self._prepare(key)
        await self._write_atomically(final, area, _one_chunk(data))

    async def read_chunks(self, key: str, chunk_size: int = CHUNK_SIZE) -> AsyncIterator[bytes]:
        async with aiofiles.open(self._path(key), "rb") as source:
            while chunk := await source.read(chunk_size):
                yield chunk

    async def size(self, key: str) -> int:
        return (await aiofiles.os.stat(self._path(key))).st_size

    async def exists(self, key: str) -> bool:
        return await aiofiles.os.path.isfile(self._path(key))

    async def delete(self, key: str) -> bool:
        try:
            await aiofiles.os.remove(self._path(key))
        except FileNotFoundError:
            return False
        return True

    async def check(self) -> None:
        for area in Area:
            if not await aiofiles.os.path.isdir(self._root / area):
                raise StorageUnavailable(f"the media folder {self._root / area} is gone")

    async def close(self) -> None:
        pass  # nothing held open between calls

    def _path(self, key: str) -> Path:
        return self._root / validate_key(key)

    async def _prepare(self, key: str) -> tuple[Path, Area]:
        final = self._path(key)
        area = Area(key.split("/", 1)[0])
        await aiofiles.os.makedirs(final.parent, mode=_DIR_MODES[area], exist_ok=True)
        return final, area

    async def _write_atomically(self, final: Path, area: Area, chunks: AsyncIterable[bytes]) -> None:
        """Write a hidden temporary file beside `final`, then rename it over `final`."""
        temp = final.with_name(f".{final.name}.{uuid.uuid4().hex}.tmp")
        try:
            async with aiofiles.open(temp, "xb") as out:
                async for chunk in chunks:
                    await out.write(chunk)
                await out.flush()
                if self._fsync:
                    await _fsync(out.fileno())
            await _chmod(temp, _FILE_MODES[area])
            await aiofiles.os.replace(temp, final)
        except BaseException:
            # Synchronous on purpose: an await here could itself be cancelled and leak the file.
            temp.unlink(missing_ok=True)
            raise
        if self._fsync:
            await _fsync_path(final.parent)


async def _one_chunk(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def _file_chunks(path: StrPath) -> AsyncIterator[bytes]:
    async with aiofiles.open(path, "rb") as source:
        while chunk := await source.read(CHUNK_SIZE):
            yield chunk


def _sync_path(path: StrPath) -> None:
    """fsync a file or a directory (a rename is only durable once its directory is synced)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


_fsync = aiofiles.os.wrap(os.fsync)
_fsync_path = aiofiles.os.wrap(_sync_path)
_chmod = aiofiles.os.wrap(os.chmod)
