"""Fakes of the SMS providers' APIs, each checking a request the way the provider documents it
(parameters and signature recomputed here, independently of the adapters) and answering as told:
"ok", "error" (a refusal) or "throttle"."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


@dataclass
class Sent:
    phone: str
    sign_name: str
    template: str
    params: Any  # aliyun: {name: value}; tencent: [value, ...]


@dataclass
class AliyunFake:
    """dysmsapi SendSms (RPC style, signature v1: HMAC-SHA1 of the canonicalized query)."""

    key_id: str
    secret: str
    mode: str = "ok"
    sent: list[Sent] = field(default_factory=list)
    nonces: set[str] = field(default_factory=set)

    @staticmethod
    def encode(value: str) -> str:
        # The documented recipe: URL-encode in UTF-8, then "+" -> "%20", "*" -> "%2A", "%7E" -> "~".
        return quote(value, safe="").replace("+", "%20").replace("*", "%2A").replace("%7E", "~")

    async def endpoint(self, request: Request) -> JSONResponse:
        params = {k: str(v) for k, v in (await request.form()).items()}
        signature = params.pop("Signature", "")
        canonical = "&".join(f"{self.encode(k)}={self.encode(params[k])}" for k in sorted(params))
        to_sign = f"{request.method}&{self.encode('/')}&{self.encode(canonical)}"
        expected = base64.b64encode(
            hmac.new(f"{self.secret}&".encode(), to_sign.encode(), hashlib.sha1).digest()
        ).decode()
        if params.get("AccessKeyId") != self.key_id:
            return JSONResponse({"Code": "InvalidAccessKeyId.NotFound", "Message": "no key"}, 404)
        if not hmac.compare_digest(signature, expected):
            return JSONResponse({"Code": "SignatureDoesNotMatch", "Message": "bad signature"}, 400)
        required = {
            "Action": "SendSms",
            "Version": "2017-05-25",
            "Format": "JSON",
            "SignatureMethod": "HMAC-SHA1",
            "SignatureVersion": "1.0",
        }
        for name, value in required.items():
            assert params.get(name) == value, (name, params.get(name))
        stamp = datetime.strptime(params["Timestamp"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        assert abs(stamp.timestamp() - time.time()) < 900, "Timestamp more than 15 minutes off"
        assert params["SignatureNonce"] not in self.nonces, "a nonce used twice"
        self.nonces.add(params["SignatureNonce"])
        for name in ("RegionId", "PhoneNumbers", "SignName", "TemplateCode"):
            assert params.get(name), name
        template_params = json.loads(params.get("TemplateParam", "{}"))
        assert isinstance(template_params, dict)
        if self.mode == "throttle":
            return JSONResponse({"Code": "isv.BUSINESS_LIMIT_CONTROL", "Message": "触发分钟级流控Permits:1"})
        if self.mode == "error":
            return JSONResponse({"Code": "isv.SMS_TEMPLATE_ILLEGAL", "Message": "模板不合法"})
        self.sent.append(
            Sent(params["PhoneNumbers"], params["SignName"], params["TemplateCode"], template_params)
        )
        return JSONResponse(
            {"Code": "OK", "Message": "OK", "BizId": "9006197469364984", "RequestId": "F655A8D5"}
        )

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/", self.endpoint, methods=["POST", "GET"])])


def _hmac256(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


@dataclass
class TencentFake:
    """sms.tencentcloudapi.com SendSms, API 3.0 with TC3-HMAC-SHA256."""

    secret_id: str
    secret_key: str
    app_id: str
    mode: str = "ok"
    sent: list[Sent] = field(default_factory=list)

    def error(self, code: str, message: str) -> JSONResponse:
        return JSONResponse({"Response": {"Error": {"Code": code, "Message": message}, "RequestId": "r1"}})

    async def endpoint(self, request: Request) -> JSONResponse:
        body = await request.body()
        headers = request.headers
        if headers.get("x-tc-action") != "SendSms" or headers.get("x-tc-version") != "2021-01-11":
            return self.error("InvalidAction", "action or version")
        if not headers.get("x-tc-region"):
            return self.error("MissingParameter", "X-TC-Region")
        timestamp = int(headers["x-tc-timestamp"])
        if abs(timestamp - time.time()) > 300:
            return self.error("AuthFailure.SignatureExpire", "timestamp")
        algorithm, _, rest = headers["authorization"].partition(" ")
        parts = dict(item.strip().split("=", 1) for item in rest.split(","))
        secret_id, date, service, terminator = parts["Credential"].split("/")
        assert algorithm == "TC3-HMAC-SHA256" and service == "sms" and terminator == "tc3_request"
        assert date == datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")
        if secret_id != self.secret_id:
            return self.error("AuthFailure.SecretIdNotFound", "secret id")
        signed = parts["SignedHeaders"].split(";")
        assert {"content-type", "host"} <= set(signed)
        canonical_headers = "".join(f"{name}:{headers[name].strip().lower()}\n" for name in signed)
        canonical = "\n".join(
            [
                request.method,
                "/",
                request.url.query,
                canonical_headers,
                parts["SignedHeaders"],
                hashlib.sha256(body).hexdigest(),
            ]
        )
        scope = f"{date}/sms/tc3_request"
        to_sign = "\n".join(
            ["TC3-HMAC-SHA256", str(timestamp), scope, hashlib.sha256(canonical.encode()).hexdigest()]
        )
        key = _hmac256(_hmac256(_hmac256(f"TC3{self.secret_key}".encode(), date), "sms"), "tc3_request")
        expected = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(parts["Signature"], expected):
            return self.error(
                "AuthFailure.SignatureFailure", "The provided credentials could not be validated."
            )
        payload = json.loads(body)
        if payload.get("SmsSdkAppId") != self.app_id:
            return self.error("InvalidParameterValue.SdkAppIdNotExist", "app id")
        for name in ("SignName", "TemplateId", "PhoneNumberSet"):
            assert payload.get(name), name
        phones = payload["PhoneNumberSet"]
        assert all(phone.startswith("+") for phone in phones), phones
        params = payload.get("TemplateParamSet", [])
        assert all(isinstance(value, str) for value in params)
        if self.mode == "throttle":
            return self._status(phones[0], "LimitExceeded.PhoneNumberThirtySecondLimit", "30 second limit")
        if self.mode == "error":
            return self._status(phones[0], "FailedOperation.TemplateIncorrectOrUnapproved", "template")
        self.sent.append(Sent(phones[0], payload["SignName"], payload["TemplateId"], params))
        return self._status(phones[0], "Ok", "send success")

    def _status(self, phone: str, code: str, message: str) -> JSONResponse:
        status = {"SerialNo": "5000:1045710669157053657849499619", "PhoneNumber": phone, "Fee": 1}
        status.update({"SessionContext": "", "Code": code, "Message": message, "IsoCode": "CN"})
        return JSONResponse({"Response": {"SendStatusSet": [status], "RequestId": "a0aabda6"}})

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/", self.endpoint, methods=["POST"])])
