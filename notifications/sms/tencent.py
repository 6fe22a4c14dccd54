"""Tencent Cloud SMS (`SendSms`, API 3.0 version 2021-01-11) with the TC3-HMAC-SHA256 signature:
a canonical request of the JSON body, signed with a key derived from the secret, the date and the
service."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from datetime import UTC, datetime
from urllib.parse import urlsplit

import httpx

from delivery.channels import Outcome, Result
from notifications.sms.base import SmsMessage

SERVICE = "sms"
VERSION = "2021-01-11"
CONTENT_TYPE = "application/json; charset=utf-8"
THROTTLE_WAIT_SECONDS = 60.0
# Top-level errors worth another try: the API's own rate limit and its transient failures.
RETRY_ERRORS = ("RequestLimitExceeded", "InternalError", "ResourceUnavailable", "FailedOperation.Timeout")


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def canonical_request(host: str, body: bytes) -> str:
    headers = f"content-type:{CONTENT_TYPE}\nhost:{host}\n"
    return "\n".join(["POST", "/", "", headers, "content-type;host", hashlib.sha256(body).hexdigest()])


def signature(secret_key: str, timestamp: int, host: str, body: bytes) -> str:
    date = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")
    scope = f"{date}/{SERVICE}/tc3_request"
    hashed = hashlib.sha256(canonical_request(host, body).encode()).hexdigest()
    to_sign = f"TC3-HMAC-SHA256\n{timestamp}\n{scope}\n{hashed}"
    key = _hmac(_hmac(_hmac(f"TC3{secret_key}".encode(), date), SERVICE), "tc3_request")
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


class TencentSms:
    name = "tencent"

    def __init__(
        self,
        secret_id: str,
        secret_key: str,
        app_id: str,
        *,
        endpoint: str = "https://sms.tencentcloudapi.com/",
        region: str = "ap-guangzhou",
        client: httpx.AsyncClient | None = None,
        timeout_seconds: float = 10,
    ) -> None:
        self.secret_id = secret_id
        self.secret_key = secret_key
        self.app_id = app_id
        self.endpoint = endpoint
        self.host = urlsplit(endpoint).netloc
        self.region = region
        self.client = client or httpx.AsyncClient(timeout=timeout_seconds)

    def request(self, message: SmsMessage) -> tuple[bytes, dict[str, str]]:
        body = json.dumps(
            {
                "PhoneNumberSet": [message.phone if message.phone.startswith("+") else f"+{message.phone}"],
                "SmsSdkAppId": self.app_id,
                "SignName": message.sign_name,
                "TemplateId": message.template_id,
                "TemplateParamSet": [value for _, value in message.params],
            },
            ensure_ascii=False,
        ).encode()
        timestamp = int(time.time())
        date = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")
        headers = {
            "Authorization": (
                f"TC3-HMAC-SHA256 Credential={self.secret_id}/{date}/{SERVICE}/tc3_request, "
                f"SignedHeaders=content-type;host, "
                f"Signature={signature(self.secret_key, timestamp, self.host, body)}"
            ),
            "Content-Type": CONTENT_TYPE,
            "Host": self.host,
            "X-TC-Action": "SendSms",
            "X-TC-Timestamp": str(timestamp),
            "X-TC-Version": VERSION,
            "X-TC-Region": self.region,
        }
        return body, headers

    async def send(self, message: SmsMessage) -> Outcome:
        body, headers = self.request(message)
        try:
            response = await self.client.post(self.endpoint, content=body, headers=headers)
        except httpx.HTTPError as exc:
            return Outcome(Result.RETRY, error=f"tencent unreachable: {type(exc).__name__}")
        status = response.status_code
        try:
            answer = response.json()["Response"]
        except (ValueError, KeyError, TypeError):
            result = Result.RETRY if status >= 500 or status == 429 else Result.FAILED
            return Outcome(result, status_code=status, error=f"tencent {status}: {response.text[:200]}")
        error = answer.get("Error")
        if error:
            code, text = str(error.get("Code", "")), str(error.get("Message", ""))
        else:
            sent = (answer.get("SendStatusSet") or [{}])[0]
            code, text = str(sent.get("Code", "")), str(sent.get("Message", ""))
            if code == "Ok":
                return Outcome(Result.DELIVERED, status_code=status)
        detail = f"tencent {status} {code}: {text}"[:500]
        if code.startswith("LimitExceeded") or code == "RequestLimitExceeded":
            return Outcome(Result.RETRY, status_code=status, error=detail, retry_after=THROTTLE_WAIT_SECONDS)
        if code.startswith(RETRY_ERRORS) or status >= 500:
            return Outcome(Result.RETRY, status_code=status, error=detail)
        return Outcome(Result.FAILED, status_code=status, error=detail)

    async def aclose(self) -> None:
        await self.client.aclose()
