"""`Storage` on an S3-compatible object store (AWS S3, MinIO, Alibaba Cloud OSS, Tencent COS) over httpx.

Every request is signed with AWS Signature Version 4 (`sign_v4`). Objects are written without an ACL,
so they take the bucket's: keep the bucket private. The app serves every object itself, after its
access check, exactly as with the local store; nothing in the bucket is ever linked to directly.

Memory stays bounded whatever the object's size: a file is read from disk in `CHUNK_SIZE` pieces, once
to hash a part and once to send it, and a file larger than `part_size` goes as a multipart upload
(aborted on failure, so a failed put leaves no part behind).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import os
import re
import xml.etree.ElementTree as ET  # builds our own XML; answers are parsed with defusedxml
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote

import aiofiles
import aiofiles.os
import defusedxml.ElementTree
import httpx

from media.storage import CHUNK_SIZE, StorageUnavailable, StrPath, validate_key

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
MIN_PART_SIZE = 5 * 1024 * 1024  # S3's floor for every part but the last
_PREFIX = re.compile(r"(?:(?!\.\.?/)[A-Za-z0-9._-]+/)*")  # "" or "segment/segment/", never "." or ".."
_UNRESERVED = "-_.~"


@dataclass(frozen=True)
class S3Config:
    endpoint: str  # scheme and host, e.g. https://oss-cn-hangzhou.aliyuncs.com
    bucket: str
    region: str
    access_key_id: str
    secret_access_key: str
    # path style: https://host/bucket/key (MinIO, moto); else virtual host: https://bucket.host/key
    path_style: bool = False
    prefix: str = ""  # prepended to every key, e.g. "envcase/"
    part_size: int = 8 * 1024 * 1024  # a larger file goes in parts of this size
    timeout_seconds: float = 30.0

    def __post_init__(self) -> None:
        if not _PREFIX.fullmatch(self.prefix):
            raise ValueError(
                "the key prefix is path segments of letters, digits, '.', '_', '-', each ending in '/'"
            )
        if self.part_size < MIN_PART_SIZE:
            raise ValueError(f"the part size must be at least {MIN_PART_SIZE} bytes")


class S3Error(StorageUnavailable):
    """The store answered an error (or could not be reached: `status` 0)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}" if status else message)
        self.status = status
        self.code = code


def sign_v4(
    method: str,
    url: httpx.URL,
    headers: dict[str, str],
    payload_sha256: str,
    *,
    access_key_id: str,
    secret_access_key: str,
    region: str,
    now: datetime,
    service: str = "s3",
) -> dict[str, str]:
    """The headers to send (`headers` plus host, date, payload hash and Authorization), signed with
    AWS Signature Version 4 over every header given."""
    amz_date = now.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    day = amz_date[:8]
    signed = {k.lower(): " ".join(v.split()) for k, v in headers.items()}
    signed |= {
        "host": url.netloc.decode("ascii"),
        "x-amz-date": amz_date,
        "x-amz-content-sha256": payload_sha256,
    }
    names = sorted(signed)
    query = sorted(
        (quote(k, safe=_UNRESERVED), quote(v, safe=_UNRESERVED)) for k, v in url.params.multi_items()
    )
    canonical = "\n".join(
        [
            method,
            quote(url.path, safe="/" + _UNRESERVED),
            "&".join(f"{k}={v}" for k, v in query),
            "".join(f"{name}:{signed[name]}\n" for name in names),
            ";".join(names),
            payload_sha256,
        ]
    )
    scope = f"{day}/{region}/{service}/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = f"AWS4{secret_access_key}".encode()
    for part in (day, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    signed["authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={access_key_id}/{scope}, "
        f"SignedHeaders={';'.join(names)}, Signature={signature}"
    )
    return signed


class S3Storage:
    """`Storage` on one bucket (and optional key prefix) of an S3-compatible store."""

    name = "s3"

    def __init__(self, config: S3Config, *, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.config = config
        endpoint = httpx.URL(config.endpoint)
        if config.path_style:
            self._base = endpoint.copy_with(path=f"/{config.bucket}/")
        else:
            self._base = endpoint.copy_with(host=f"{config.bucket}.{endpoint.host}", path="/")
        self._client = httpx.AsyncClient(timeout=config.timeout_seconds, transport=transport)

    def url(self, key: str | None) -> httpx.URL:
        """The object's address (the bucket's for None)."""
        if key is None:
            return self._base
        return self._base.copy_with(path=self._base.path + self.config.prefix + validate_key(key))

    async def put_file(self, key: str, source: StrPath) -> None:
        size = (await aiofiles.os.stat(source)).st_size
        if size <= self.config.part_size:
            await self._put_range(key, source, 0, size, {})
        else:
            await self._put_multipart(key, source, size)
        await aiofiles.os.remove(source)

    async def put_bytes(self, key: str, data: bytes) -> None:
        digest = hashlib.sha256(data).hexdigest()
        await self._send("PUT", self.url(key), digest, content=data)

    async def read_chunks(self, key: str, chunk_size: int = CHUNK_SIZE) -> AsyncIterator[bytes]:
        request = self._request("GET", self.url(key), EMPTY_SHA256)
        response = await self._transmit(request, stream=True)
        try:
            if response.status_code == 404:
                raise FileNotFoundError(key)
            if response.status_code != 200:
                await response.aread()
                raise _error_of(response)
            async for chunk in response.aiter_bytes(chunk_size):
                yield chunk
        finally:
            await response.aclose()

    async def size(self, key: str) -> int:
        response = await self._send("HEAD", self.url(key), EMPTY_SHA256, missing_ok=True)
        if response.status_code == 404:
            raise FileNotFoundError(key)
        return int(response.headers["content-length"])

    async def exists(self, key: str) -> bool:
        response = await self._send("HEAD", self.url(key), EMPTY_SHA256, missing_ok=True)
        return response.status_code != 404

    async def delete(self, key: str) -> bool:
        # S3 answers 204 for a missing key too; the HEAD tells the caller whether anything was removed.
        if not await self.exists(key):
            return False
        await self._send("DELETE", self.url(key), EMPTY_SHA256)
        return True

    async def check(self) -> None:
        """Raise S3Error unless the bucket exists and these credentials may use it."""
        await self._send("HEAD", self.url(None), EMPTY_SHA256)

    async def close(self) -> None:
        await self._client.aclose()

    # --- requests ---------------------------------------------------------------------------------

    def _request(
        self,
        method: str,
        url: httpx.URL,
        payload_sha256: str,
        headers: dict[str, str] | None = None,
        content: bytes | AsyncIterator[bytes] | None = None,
    ) -> httpx.Request:
        signed = sign_v4(
            method,
            url,
            headers or {},
            payload_sha256,
            access_key_id=self.config.access_key_id,
            secret_access_key=self.config.secret_access_key,
            region=self.config.region,
            now=datetime.now(UTC),
        )
        return self._client.build_request(method, url, headers=signed, content=content)

    async def _transmit(self, request: httpx.Request, *, stream: bool = False) -> httpx.Response:
        try:
            return await self._client.send(request, stream=stream)
        except httpx.TransportError as exc:
            raise S3Error(0, "Unreachable", f"cannot reach {request.url.host}: {exc!r}") from exc

    async def _send(
        self,
        method: str,
        url: httpx.URL,
        payload_sha256: str,
        *,
        headers: dict[str, str] | None = None,
        content: bytes | AsyncIterator[bytes] | None = None,
        missing_ok: bool = False,
    ) -> httpx.Response:
        response = await self._transmit(self._request(method, url, payload_sha256, headers, content))
        if response.is_success or (missing_ok and response.status_code == 404):
            return response
        raise _error_of(response)

    async def _put_range(
        self, key: str, source: StrPath, offset: int, length: int, params: dict[str, str]
    ) -> httpx.Response:
        """PUT `length` bytes of `source` from `offset` (an object, or a part with `params`)."""
        digest = await asyncio.to_thread(_sha256_of_range, source, offset, length)
        url = self.url(key).copy_merge_params(params)
        headers = {"content-length": str(length)}  # a known length: S3 refuses a chunked body
        return await self._send(
            "PUT", url, digest, headers=headers, content=_range_chunks(source, offset, length)
        )

    async def _put_multipart(self, key: str, source: StrPath, size: int) -> None:
        url = self.url(key)
        created = await self._send("POST", url.copy_merge_params({"uploads": ""}), EMPTY_SHA256)
        upload_id = _xml_text(created.content, "UploadId")
        try:
            etags = []
            for number, offset in enumerate(range(0, size, self.config.part_size), start=1):
                length = min(self.config.part_size, size - offset)
                params = {"partNumber": str(number), "uploadId": upload_id}
                part = await self._put_range(key, source, offset, length, params)
                etags.append(part.headers["etag"])
            body = _complete_body(etags)
            done = await self._send(
                "POST",
                url.copy_merge_params({"uploadId": upload_id}),
                hashlib.sha256(body).hexdigest(),
                content=body,
            )
            # CompleteMultipartUpload may answer 200 and still have failed: the error is in the body.
            if b"<Error>" in done.content:
                raise _error_of(done)
        except BaseException:
            # Shielded: a cancelled put must still abort, or the parts linger (and are billed).
            await asyncio.shield(self._abort(url, upload_id))
            raise

    async def _abort(self, url: httpx.URL, upload_id: str) -> None:
        # If this fails too, the bucket's rule for incomplete uploads is the backstop (docs/storage.md).
        with contextlib.suppress(S3Error):
            await self._send("DELETE", url.copy_merge_params({"uploadId": upload_id}), EMPTY_SHA256)


def _error_of(response: httpx.Response) -> S3Error:
    code = message = ""
    if response.content:
        try:
            code = _xml_text(response.content, "Code")
            message = _xml_text(response.content, "Message")
        except ValueError:
            pass
    return S3Error(response.status_code, code or response.reason_phrase, message or response.reason_phrase)


def _xml_text(body: bytes, tag: str) -> str:
    """The text of the first element named `tag` in an S3 answer (namespaced or not)."""
    try:
        root = defusedxml.ElementTree.fromstring(body)
    except ET.ParseError as exc:
        raise ValueError("not XML") from exc
    for element in root.iter():
        if element.tag.rsplit("}", 1)[-1] == tag:
            return element.text or ""
    raise ValueError(f"no {tag} in the answer")


def _complete_body(etags: list[str]) -> bytes:
    root = ET.Element("CompleteMultipartUpload")
    for number, etag in enumerate(etags, start=1):
        part = ET.SubElement(root, "Part")
        ET.SubElement(part, "PartNumber").text = str(number)
        ET.SubElement(part, "ETag").text = etag
    return ET.tostring(root)


def _file_range(path: StrPath, offset: int, length: int) -> Iterator[bytes]:
    with open(path, "rb") as source:
        source.seek(offset)
        while length > 0 and (chunk := source.read(min(CHUNK_SIZE, length))):
            length -= len(chunk)
            yield chunk


def _sha256_of_range(path: StrPath, offset: int, length: int) -> str:
    digest = hashlib.sha256()
    for chunk in _file_range(path, offset, length):
        digest.update(chunk)
    return digest.hexdigest()


async def _range_chunks(path: StrPath, offset: int, length: int) -> AsyncIterator[bytes]:
    async with aiofiles.open(os.fspath(path), "rb") as source:
        await source.seek(offset)
        while length > 0 and (chunk := await source.read(min(CHUNK_SIZE, length))):
            length -= len(chunk)
            yield chunk
