"""A browser's side of Web Push and a push service, for the tests: the subscription's key pair that
decrypts a message (RFC 8291, written out here independently of the sender), and a local push service
that checks the VAPID token (RFC 8292) and keeps what it received."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

import jwt
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from starlette.requests import Request
from starlette.responses import Response

from notifications.push import b64url, b64url_decode

SUBJECT = "mailto:ops@city.example"


def new_vapid_key() -> str:
    """A VAPID private key as the setting takes it: base64url of the raw 32-byte P-256 scalar."""
    key = ec.generate_private_key(ec.SECP256R1())
    return b64url(key.private_numbers().private_value.to_bytes(32, "big"))


class Browser:
    """What a browser keeps for one subscription: its P-256 key pair and auth secret."""

    def __init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.public = self.key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        self.auth = os.urandom(16)

    def keys(self) -> dict[str, str]:
        return {"p256dh": b64url(self.public), "auth": b64url(self.auth)}

    def decrypt(self, body: bytes) -> bytes:
        """RFC 8291 section 3.4 and RFC 8188: one aes128gcm record from the application server."""
        salt, rs, id_len = body[:16], int.from_bytes(body[16:20], "big"), body[20]
        sender = body[21 : 21 + id_len]
        ciphertext = body[21 + id_len :]
        assert id_len == 65 and rs >= 18 and len(ciphertext) <= rs
        secret = self.key.exchange(
            ec.ECDH(), ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), sender)
        )
        info = b"WebPush: info\x00" + self.public + sender
        ikm = HKDF(hashes.SHA256(), 32, salt=self.auth, info=info).derive(secret)
        cek = HKDF(hashes.SHA256(), 16, salt=salt, info=b"Content-Encoding: aes128gcm\x00").derive(ikm)
        nonce = HKDF(hashes.SHA256(), 12, salt=salt, info=b"Content-Encoding: nonce\x00").derive(ikm)
        padded = AESGCM(cek).decrypt(nonce, ciphertext, None)
        unpadded = padded.rstrip(b"\x00")
        assert unpadded[-1:] == b"\x02", "the last record ends with the 0x02 delimiter"
        return unpadded[:-1]


@dataclass
class PushService:
    """A push service: answers per path, and keeps what it received."""

    vapid_public: str
    answers: dict[str, int] = field(default_factory=dict)
    received: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)
    base: str = ""

    async def endpoint(self, request: Request) -> Response:
        body = await request.body()
        headers = dict(request.headers)
        self.received.append((request.url.path, headers, body))
        status = self.answers.get(request.url.path, 201)
        if status == 201:
            self.check_vapid(headers)
            assert headers["content-encoding"] == "aes128gcm"
            assert int(headers["ttl"]) > 0
        return Response(status_code=status)

    def check_vapid(self, headers: dict[str, str]) -> None:
        scheme, _, params = headers["authorization"].partition(" ")
        assert scheme == "vapid"
        values = dict(part.strip().split("=", 1) for part in params.split(","))
        assert values["k"] == self.vapid_public
        public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b64url_decode(values["k"]))
        claims = jwt.decode(values["t"], public, algorithms=["ES256"], audience=self.base)
        assert claims["sub"] == SUBJECT and claims["exp"] > time.time()
        assert claims["exp"] <= time.time() + 24 * 3600
