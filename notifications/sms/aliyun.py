"""Alibaba Cloud SMS (dysmsapi `SendSms`, API version 2017-05-25) with the RPC signature (v1):
HMAC-SHA1 over the method and the sorted, percent-encoded parameters, keyed with the secret plus "&"."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from datetime import UTC, datetime
from urllib.parse import quote

import httpx

from delivery.channels import Outcome, Result
from notifications.sms.base import SmsMessage

# Codes that mean "later": the flow controls (per minute, hour, day) and the service's own trouble.
THROTTLED = {
    "isv.BUSINESS_LIMIT_CONTROL",
    "isv.DAY_LIMIT_CONTROL",
    "Throttling",
    "Throttling.User",
    "Throttling.Api",
    "ServiceUnavailable",
    "InternalError",
    "isp.SYSTEM_ERROR",
}
THROTTLE_WAIT_SECONDS = 60.0  # the tightest flow control is one code a minute per number


def percent_encode(value: str) -> str:
    """RFC 3986 unreserved characters stay; everything else is %XX of its UTF-8 (space is %20)."""
    return quote(value, safe="-_.~")


def string_to_sign(method: str, params: dict[str, str]) -> str:
    canonical = "&".join(f"{percent_encode(k)}={percent_encode(params[k])}" for k in sorted(params))
    return f"{method}&{percent_encode('/')}&{percent_encode(canonical)}"


def sign(secret: str, method: str, params: dict[str, str]) -> str:
    digest = hmac.new(f"{secret}&".encode(), string_to_sign(method, params).encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


class AliyunSms:
    name = "aliyun"

    def __init__(
        self,
        access_key_id: str,
        access_key_secret: str,
        *,
        endpoint: str = "https://dysmsapi.aliyuncs.com/",
        region: str = "cn-hangzhou",
        client: httpx.AsyncClient | None = None,
        timeout_seconds: float = 10,
    ) -> None:
        self.access_key_id = access_key_id
        self.access_key_secret = access_key_secret
        self.endpoint = endpoint
        self.region = region
        self.client = client or httpx.AsyncClient(timeout=timeout_seconds)

    def request_params(self, message: SmsMessage) -> dict[str, str]:
        params = {
            "AccessKeyId": self.access_key_id,
            "Action": "SendSms",
            "Format": "JSON",
            "RegionId": self.region,
            "SignatureMethod": "HMAC-SHA1",
            "SignatureNonce": uuid.uuid4().hex,
            "SignatureVersion": "1.0",
            "Timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "Version": "2017-05-25",
            # Mainland numbers go without the country code; others with it (international SMS).
            "PhoneNumbers": message.phone.removeprefix("+86").lstrip("+"),
            "SignName": message.sign_name,
            "TemplateCode": message.template_id,
        }
        if message.params:
            params["TemplateParam"] = json.dumps(dict(message.params), ensure_ascii=False)
        params["Signature"] = sign(self.access_key_secret, "POST", params)
        return params

    async def send(self, message: SmsMessage) -> Outcome:
        try:
            response = await self.client.post(self.endpoint, data=self.request_params(message))
        except httpx.HTTPError as exc:
            return Outcome(Result.RETRY, error=f"aliyun unreachable: {type(exc).__name__}")
        try:
            answer = response.json()
            code = str(answer.get("Code", ""))
            text = str(answer.get("Message", ""))
        except (ValueError, AttributeError):
            code, text = "", response.text[:200]
        status = response.status_code
        if status == 200 and code == "OK":
            return Outcome(Result.DELIVERED, status_code=status)
        error = f"aliyun {status} {code}: {text}"[:500]
        if code in THROTTLED or code.startswith("Throttling"):
            return Outcome(Result.RETRY, status_code=status, error=error, retry_after=THROTTLE_WAIT_SECONDS)
        if status >= 500 or (not code and status == 429):
            return Outcome(Result.RETRY, status_code=status, error=error)
        return Outcome(Result.FAILED, status_code=status, error=error)

    async def aclose(self) -> None:
        await self.client.aclose()
