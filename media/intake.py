"""Photo intake: resumable upload sessions, one-shot uploads, and verified bytes becoming a Photo.

A phone either sends a small photo in one request (`upload_file`) or opens an upload session with
the photo's size and SHA-256 (`start_upload`), sends it in chunks (`receive_chunk`, resumable from
`session.received` after a dropped connection) and then calls `finish_upload`. Both paths end in the
same place: the bytes are hashed, decoded and rendered off the event loop by a bounded pool of
threads (one per core), the evidence original goes to the private area and the derivatives to the
public area, and only then is the Photo row created. A refused upload leaves no file and no row.

Bytes are content-addressed and deduplicated per owner: uploading bytes the owner already has
returns that Photo and stores nothing. Files are shared between owners of the same bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import re
import time
import uuid
from collections.abc import AsyncIterable, Awaitable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import aiofiles
import aiofiles.os
import anyio
from tortoise.exceptions import IntegrityError
from tortoise.expressions import Q

from kernel import clock, metrics
from kernel.errors import DomainError, ErrorCode, invalid, not_found
from kernel.idempotency import create_once, fingerprint
from media.config import MediaConfig
from media.images import ProcessedPhoto, process_photo
from media.models import Photo, UploadSession
from media.storage import Area, Storage, StorageUnavailable, content_key

log = logging.getLogger(__name__)

_SHA256 = re.compile(r"[0-9a-f]{64}")
_CLIENT_ID = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
READ_SIZE = 1024 * 1024
WRITE_BATCH = 512 * 1024  # network chunks are ~64 KiB; a thread hop per chunk costs more than the write
DERIVATIVE_EXTENSION = "jpg"


class OffsetMismatch(DomainError):
    """The chunk does not start where the server's copy ends (or another chunk is being written)."""

    def __init__(self, received: int, message: str | None = None) -> None:
        super().__init__(
            ErrorCode.OFFSET_MISMATCH, message or f"The server has {received} bytes; resume from there."
        )
        self.received = received


class ChecksumMismatch(DomainError):
    """A chunk's bytes do not have the checksum the client sent with them: none of them were kept."""

    def __init__(self, received: int) -> None:
        super().__init__(ErrorCode.HASH_MISMATCH, "The chunk does not match its checksum; send it again.")
        self.received = received


class ChunkChecksum:
    """The checksum a client sent with one chunk (tus checksum extension), checked as the bytes arrive."""

    ALGORITHMS = ("sha1", "md5", "sha256")

    def __init__(self, algorithm: str, expected: bytes) -> None:
        if algorithm not in self.ALGORITHMS:
            raise ValueError(algorithm)
        self._hash = hashlib.new(algorithm)
        self.expected = expected

    def update(self, data: bytes) -> None:
        self._hash.update(data)

    def matches(self) -> bool:
        return self._hash.digest() == self.expected


class _LeaseLost(Exception):
    """A stalled chunk's lease was taken over by a newer request: stop touching the file."""


class ByteReader(Protocol):
    async def read(self, size: int = -1) -> bytes: ...


@dataclass(frozen=True)
class UploadStart:
    """Either an upload session to send bytes to, or the Photo the owner already has for them."""

    session: UploadSession | None = None
    photo: Photo | None = None


def original_key(photo: Photo) -> str:
    return content_key(Area.ORIGINALS, photo.sha256, photo.format)


def derivative_key(sha256: str, size: str) -> str:
    return content_key(Area.DERIVATIVES, sha256, DERIVATIVE_EXTENSION, size)


def _refusal_path(exc: DomainError, *field: str) -> DomainError:
    exc.field = exc.field or list(field)
    return exc


def _store_unavailable(exc: StorageUnavailable, *field: str) -> DomainError:
    """The photo store failed: a retryable refusal (what was sent stays; nothing was attached)."""
    log.warning("photo store unavailable: %s", exc)
    return DomainError(ErrorCode.UNAVAILABLE, "The photo store cannot be reached; try again shortly.", field)


def _verify_and_process(
    path: Path, byte_size: int, sha256: str | None, max_pixels: int
) -> tuple[str, ProcessedPhoto]:
    """Worker thread: hash the whole file, check it is what was announced, then decode and render."""
    digest = hashlib.sha256()
    with open(path, "rb") as source:
        while block := source.read(READ_SIZE):
            digest.update(block)
        size = source.tell()
    hex_digest = digest.hexdigest()
    if sha256 is not None and (size != byte_size or hex_digest != sha256):
        raise DomainError(ErrorCode.HASH_MISMATCH, "The bytes received do not have the announced SHA-256.")
    return hex_digest, process_photo(path, max_pixels=max_pixels)


async def remove_quietly(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        await aiofiles.os.remove(path)


def _create_or_open(path: str, flags: int) -> int:
    return os.open(path, flags | os.O_CREAT, 0o600)


class PhotoIntake:
    """Accepts photos into `storage`. Temporary files live in `temp_dir`, which should be on the
    same filesystem as a local store so that keeping an original is a rename, not a copy."""

    def __init__(self, storage: Storage, temp_dir: Path, config: MediaConfig | None = None) -> None:
        self.storage = storage
        self.config = config or MediaConfig()
        self.temp_dir = Path(temp_dir)
        self.temp_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._pool = ThreadPoolExecutor(max_workers=self.config.workers, thread_name_prefix="photo")
        # Finishes in progress in this process: a retried finish waits for the first one.
        self._finishing: dict[uuid.UUID, asyncio.Future[Photo]] = {}

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def session_path(self, session_id: uuid.UUID) -> Path:
        return self.temp_dir / f"session-{session_id.hex}.part"

    # --- resumable uploads ----------------------------------------------------------------------

    async def start_upload(
        self, owner_id: int, *, byte_size: int, sha256: str, client_id: str | None = None
    ) -> UploadStart:
        """Open an upload session, or return the owner's existing Photo of these bytes.

        With a `client_id`, a retried start returns the same session (the same id with another size
        or hash is a CONFLICT).
        """
        digest = sha256.strip().lower()
        if not _SHA256.fullmatch(digest):
            raise invalid("Not a SHA-256: give 64 hexadecimal digits.", "input", "sha256")
        self._check_size(byte_size, "input", "byteSize")
        if client_id is not None and not _CLIENT_ID.fullmatch(client_id):
            raise invalid("A client id has 1-64 letters, digits or _.:-", "input", "clientId")
        existing = await self._owned_photo(owner_id, digest)
        if existing is not None:
            return UploadStart(photo=existing)
        if client_id is None:
            return UploadStart(session=await self._new_session(owner_id, byte_size, digest))
        session, _ = await create_once(
            UploadSession,
            lookup={"owner_id": owner_id, "client_id": client_id},
            content_fingerprint=fingerprint({"byteSize": byte_size, "sha256": digest}),
            create=lambda: self._new_session(owner_id, byte_size, digest, client_id),
        )
        return UploadStart(session=session)

    async def create_upload(self, owner_id: int, byte_size: int, sha256: str | None = None) -> UploadSession:
        """Open an upload session knowing only the size (a tus creation); the hash, when given, is
        checked at the finish as for `start_upload`. Within the same limits as `start_upload`."""
        self._check_size(byte_size)
        digest = sha256.strip().lower() if sha256 is not None else None
        if digest is not None and not _SHA256.fullmatch(digest):
            raise invalid("Not a SHA-256: give 64 hexadecimal digits.")
        return await self._new_session(owner_id, byte_size, digest)

    def _new_session(
        self, owner_id: int, byte_size: int, sha256: str | None, client_id: str | None = None
    ) -> Awaitable[UploadSession]:
        return UploadSession.create(
            id=uuid.uuid4(),
            owner_id=owner_id,
            client_id=client_id,
            fingerprint=fingerprint({"byteSize": byte_size, "sha256": sha256}),
            byte_size=byte_size,
            sha256=sha256,
            expires_at=clock.now() + self.config.upload_ttl,
        )

    async def terminate_upload(self, owner_id: int, upload_id: str) -> None:
        """Give up an upload: its row and bytes go (a photo already made from it stays)."""
        await self._discard(await self._session(owner_id, upload_id))

    async def upload_status(self, owner_id: int, upload_id: str) -> UploadSession:
        return await self._session(owner_id, upload_id)

    async def receive_chunk(
        self,
        owner_id: int,
        upload_id: str,
        offset: int,
        chunks: AsyncIterable[bytes],
        content_length: int | None = None,
        checksum: ChunkChecksum | None = None,
    ) -> tuple[int, UploadSession]:
        """Append one chunk starting at `offset`, streamed to the session's file; the new offset and the
        session as it stands after the chunk (for its expiry: no second read when this request released it).

        A chunk must start exactly where the stored bytes end (else OffsetMismatch, with the current
        offset). If the client disconnects, every byte written so far is kept and the offset says so.
        Sending more than the announced size is TOO_LARGE and ends the session: file and row go.
        With a `checksum`, the chunk is kept only whole and matching (else ChecksumMismatch, or after a
        disconnect the offset stays where it was): a partial chunk cannot be verified.
        """
        session = await self._session(owner_id, upload_id)
        if session.photo_id is not None or offset != session.received:
            raise OffsetMismatch(session.received)
        remaining = session.byte_size - offset
        if content_length is not None and content_length > remaining:
            await self._discard(session)
            raise self._too_large_for(session)
        token = uuid.uuid4().hex
        verified = False
        if not await self._take_lease(session, token):
            current = await UploadSession.get(id=session.id)
            raise OffsetMismatch(current.received, "Another chunk of this upload is still arriving.")

        written = 0
        pending: list[bytes] = []  # network chunks not yet written: written in one thread hop
        pending_size = 0
        lease_renewed = time.monotonic()
        renew_every = self.config.chunk_lease.total_seconds() / 3
        still_ours = True
        try:
            async with aiofiles.open(self.session_path(session.id), "r+b", opener=_create_or_open) as out:

                async def flush() -> None:
                    nonlocal written, pending_size, lease_renewed, still_ours
                    if time.monotonic() - lease_renewed > renew_every:
                        still_ours = await self._renew_lease(session.id, token)
                        if not still_ours:
                            raise _LeaseLost
                        lease_renewed = time.monotonic()
                    await out.writelines(pending)
                    written += pending_size
                    pending.clear()
                    pending_size = 0

                await out.seek(offset)
                try:
                    async for chunk in chunks:
                        if written + pending_size + len(chunk) > remaining:
                            still_ours = False  # the whole upload is discarded below
                            raise self._too_large_for(session)
                        if checksum is not None:
                            checksum.update(chunk)
                        pending.append(chunk)
                        pending_size += len(chunk)
                        if pending_size >= WRITE_BATCH:
                            await flush()
                    verified = checksum is None or checksum.matches()
                finally:
                    if still_ours:
                        # Also on a disconnect: every byte that arrived is kept (unless it had to match
                        # a checksum), and the file ends exactly there (a takeover's newer writer owns
                        # the file: hands off).
                        with anyio.CancelScope(shield=True):
                            if checksum is None or verified:
                                await flush()
                            else:
                                written = 0
                            await out.truncate(offset + written)
                if not verified:
                    raise ChecksumMismatch(offset)
        except _LeaseLost:
            raise OffsetMismatch(offset, "A newer request took over this upload.") from None
        except ChecksumMismatch:
            await self._release(session, token, offset)
            raise
        except DomainError:  # TOO_LARGE: the client lied about the size, the whole upload goes
            with anyio.CancelScope(shield=True):
                await self._discard(session)
            raise
        except BaseException:
            with anyio.CancelScope(shield=True):  # a disconnect or cancellation keeps what arrived
                await self._release(session, token, offset + written)
            raise
        released = await self._release(session, token, offset + written)
        metrics.upload_bytes.inc(written)
        if not released:  # a newer request took the upload over meanwhile: its state is the one to tell
            session = await self._session(owner_id, upload_id)
        return offset + written, session

    async def finish_upload(self, owner_id: int, upload_id: str) -> Photo:
        """Verify and process a complete upload into a Photo. Finishing again returns the same Photo."""
        session = await self._session(owner_id, upload_id)
        if session.photo_id is not None:
            return await Photo.get(id=session.photo_id)
        running = self._finishing.get(session.id)
        if running is None:
            running = asyncio.ensure_future(self._finish(session))
            self._finishing[session.id] = running
            running.add_done_callback(lambda _: self._finishing.pop(session.id, None))
        return await asyncio.shield(running)

    async def _finish(self, session: UploadSession) -> Photo:
        if session.received < session.byte_size:
            raise DomainError(
                ErrorCode.IN_PROGRESS,
                f"Only {session.received} of {session.byte_size} bytes have arrived; resume the upload.",
                ["input", "uploadId"],
            )
        token = uuid.uuid4().hex
        # Held while processing, so a finish in another process answers IN_PROGRESS meanwhile.
        if not await self._take_lease(session, token, session.received, self.config.chunk_lease * 20):
            raise DomainError(
                ErrorCode.IN_PROGRESS,
                "This upload is still being received or processed.",
                ["input", "uploadId"],
            )
        path = self.session_path(session.id)
        try:
            photo = await self._owned_photo(session.owner_id, session.sha256) if session.sha256 else None
            if photo is None:
                photo = await self._accept(session.owner_id, path, session.byte_size, session.sha256)
        except DomainError as exc:
            await self._discard(session)
            raise _refusal_path(exc, "input", "uploadId") from None
        except StorageUnavailable as exc:  # the staged bytes stay: finishing again retries
            await self._release(session, token, session.received)
            raise _store_unavailable(exc, "input", "uploadId") from None
        except BaseException:
            await self._release(session, token, session.received)
            raise
        await UploadSession.filter(id=session.id).update(
            photo_id=photo.id, lease_token=None, lease_until=None
        )
        path.unlink(missing_ok=True)  # gone already when it became the original
        return photo

    # --- one-shot uploads -----------------------------------------------------------------------

    async def upload_file(self, owner_id: int, source: ByteReader, *field: str) -> Photo:
        """Copy a small upload to a temporary file (bounded while copying), then accept it."""
        path = self.temp_dir / f"direct-{uuid.uuid4().hex}.part"
        try:
            size = 0
            async with aiofiles.open(path, "xb") as out:
                while chunk := await source.read(READ_SIZE):
                    size += len(chunk)
                    if size > self.config.max_bytes:
                        raise _refusal_path(self._too_large(), *field)
                    await out.write(chunk)
            self._check_size(size, *field)
            try:
                return await self._accept(owner_id, path, size, None)
            except DomainError as exc:
                raise _refusal_path(exc, *field) from None
            except StorageUnavailable as exc:
                raise _store_unavailable(exc, *field) from None
        finally:
            with anyio.CancelScope(shield=True):
                await remove_quietly(path)  # gone already when the original was kept

    # --- shared pipeline ------------------------------------------------------------------------

    async def _accept(self, owner_id: int, path: Path, byte_size: int, sha256: str | None) -> Photo:
        loop = asyncio.get_running_loop()
        digest, processed = await loop.run_in_executor(
            self._pool, _verify_and_process, path, byte_size, sha256, self.config.max_pixels
        )
        existing = await self._owned_photo(owner_id, digest)
        metrics.photos_accepted.inc()
        if existing is not None:
            return existing
        # Derivatives, then the original, then the row: a Photo row never points at missing files.
        for size, derivative in processed.derivatives.items():
            key = derivative_key(digest, size)
            if not await self.storage.exists(key):
                await self.storage.put_bytes(key, derivative.data)
        key = content_key(Area.ORIGINALS, digest, processed.info.extension)
        if await self.storage.exists(key):
            await remove_quietly(path)
        else:
            await self.storage.put_file(key, path)
        evidence = processed.metadata
        captured_at = evidence.captured_at
        if captured_at is not None and captured_at.tzinfo is None:
            captured_at = captured_at.replace(tzinfo=self.config.camera_timezone)
        width, height = processed.upright_size
        try:
            return await Photo.create(
                owner_id=owner_id,
                sha256=digest,
                format=processed.info.extension,
                byte_size=byte_size,
                width=width,
                height=height,
                exif_latitude=evidence.latitude,
                exif_longitude=evidence.longitude,
                captured_at=captured_at,
                camera_make=evidence.camera_make,
                camera_model=evidence.camera_model,
                expires_at=clock.now() + self.config.unattached_ttl,
            )
        except IntegrityError:
            # The same bytes finished concurrently for this owner: theirs is the one Photo.
            return await Photo.get(owner_id=owner_id, sha256=digest)

    async def _owned_photo(self, owner_id: int, sha256: str) -> Photo | None:
        """The owner's Photo of these bytes; an unattached one's expiry restarts, as if just uploaded."""
        photo = await Photo.get_or_none(owner_id=owner_id, sha256=sha256)
        if photo is not None and photo.attached_at is None:
            photo.expires_at = clock.now() + self.config.unattached_ttl
            await Photo.filter(id=photo.id, attached_at=None).update(expires_at=photo.expires_at)
        return photo

    async def _session(self, owner_id: int, upload_id: str) -> UploadSession:
        try:
            session_id = uuid.UUID(str(upload_id))
        except ValueError:
            raise not_found("upload", "input", "uploadId") from None
        session = await UploadSession.get_or_none(id=session_id, owner_id=owner_id)
        if session is None or (session.photo_id is None and session.expires_at <= clock.now()):
            raise not_found("upload", "input", "uploadId")
        return session

    async def _take_lease(
        self, session: UploadSession, token: str, received: int | None = None, lease: Any = None
    ) -> bool:
        now = clock.now()
        taken = (
            await UploadSession.filter(Q(lease_until=None) | Q(lease_until__lt=now))
            .filter(id=session.id, received=session.received if received is None else received, photo_id=None)
            .update(lease_token=token, lease_until=now + (lease or self.config.chunk_lease))
        )
        return taken == 1

    async def _renew_lease(self, session_id: uuid.UUID, token: str) -> bool:
        renewed = await UploadSession.filter(id=session_id, lease_token=token).update(
            lease_until=clock.now() + self.config.chunk_lease
        )
        return renewed == 1

    async def _release(self, session: UploadSession, token: str, received: int) -> bool:
        """Record the new offset and free the upload, unless a newer request took it over (False); the
        in-memory `session` then says what the row says."""
        expires_at = clock.now() + self.config.upload_ttl
        released = await UploadSession.filter(id=session.id, lease_token=token).update(
            received=received, lease_token=None, lease_until=None, expires_at=expires_at
        )
        if released:
            session.received, session.expires_at, session.lease_token, session.lease_until = (
                received, expires_at, None, None
            )  # fmt: skip
        return released == 1

    async def _discard(self, session: UploadSession) -> None:
        await UploadSession.filter(id=session.id).delete()
        await remove_quietly(self.session_path(session.id))

    def _check_size(self, byte_size: int, *field: str) -> None:
        if byte_size < 0:
            raise invalid("A size cannot be negative.", *field)
        if byte_size == 0:
            raise DomainError(ErrorCode.UNSUPPORTED_FORMAT, "An empty file is not a photo.", field or None)
        if byte_size > self.config.max_bytes:
            raise _refusal_path(self._too_large(), *field)

    def _too_large(self) -> DomainError:
        mib = self.config.max_bytes / 2**20
        return DomainError(ErrorCode.TOO_LARGE, f"A photo may have at most {mib:g} MiB.")

    def _too_large_for(self, session: UploadSession) -> DomainError:
        return DomainError(
            ErrorCode.TOO_LARGE, f"This upload was announced as {session.byte_size} bytes; more arrived."
        )
