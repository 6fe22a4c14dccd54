"""What every SMS provider adapter offers, the templates file, and masking for logs."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from delivery.channels import Outcome

DEFAULT_TEMPLATES_FILE = Path(__file__).resolve().parent.parent / "data" / "sms_templates.json"


def mask_phone(phone: str) -> str:
    """A phone number as logs may show it: only its last two digits."""
    return "*" * max(len(phone) - 2, 0) + phone[-2:]


def mask_params(params: dict[str, str]) -> dict[str, str]:
    return {name: "***" for name in params}


@dataclass(frozen=True)
class SmsMessage:
    phone: str  # E.164, e.g. +8613800138000
    kind: str  # the message kind (otp, case_accepted, ...)
    language: str
    sign_name: str
    template_id: str  # the provider's template code or id
    params: list[tuple[str, str]]  # in the template's order


class SmsProvider(Protocol):
    name: str

    async def send(self, message: SmsMessage) -> Outcome:
        """Send once; answer RETRY for throttling and transient failures, FAILED for refusals."""
        ...


class TemplateError(Exception):
    """A message kind or language the templates file does not cover, or a missing parameter."""


@dataclass(frozen=True)
class SmsTemplates:
    """The templates file: per message kind, its parameter names and per language and provider the
    provider's template; per provider and language the sign name (签名)."""

    data: dict[str, Any]

    @classmethod
    def load(cls, path: Path | None = None) -> SmsTemplates:
        data = json.loads((path or DEFAULT_TEMPLATES_FILE).read_text(encoding="utf-8"))
        if not isinstance(data.get("templates"), dict) or not isinstance(data.get("sign_names"), dict):
            raise ValueError(f"{path}: expected {{'sign_names': ..., 'templates': ...}}")
        return cls(data)

    def message(
        self, provider: str, phone: str, kind: str, language: str, params: dict[str, Any]
    ) -> SmsMessage:
        template = self.data["templates"].get(kind)
        if template is None:
            raise TemplateError(f"no SMS template for {kind!r}")
        default = self.data.get("default_language", "zh-CN")
        per_language = template.get(language) or template.get(default) or {}
        signs = self.data["sign_names"].get(provider, {})
        sign_name = signs.get(language) or signs.get(default) or ""
        if provider == "log":  # the development provider needs no approved template
            per_language = {"log": per_language.get("log", kind)}
        if provider not in per_language:
            raise TemplateError(f"no {provider} template for {kind!r} in {language!r}")
        if not sign_name and provider != "log":
            raise TemplateError(f"no {provider} sign name for {language!r}")
        ordered: list[tuple[str, str]] = []
        for name in template.get("params", []):
            if name not in params:
                raise TemplateError(f"the {kind!r} template needs the parameter {name!r}")
            ordered.append((name, str(params[name])))
        return SmsMessage(phone, kind, language, sign_name, str(per_language[provider]), ordered)
