"""Log lines fit for production: the request id on every line, and nothing personal in them.

- `request_id` is a context variable the server's RequestLog middleware sets for each HTTP request
  and WebSocket connection; whatever is logged while handling it (by this code, Tortoise, strawberry,
  uvicorn's error log) carries it, tracebacks included: each line of a traceback repeats it, so
  `grep <id>` finds the whole record. Outside a request the id is "-".
- In production `Formatter` also masks what must never be written: phone numbers (all but the last
  two digits), bearer and refresh tokens, JSON Web Tokens, one-time codes written as `code=123456`
  or `"code": "123456"`, and coordinates beyond two decimals (about a kilometre). This is the last line
  of defence; the code itself does not log such values (see docs/operations.md, "Logs").
- `logging_config` is a `logging.config.dictConfig` dict: the CLI applies it, and uvicorn applies it
  again in each of its worker processes (`uvicorn.run(log_config=...)`), so uvicorn's own loggers go
  through the same formatter.
"""

from __future__ import annotations

import logging
import logging.config
import re
from contextvars import ContextVar
from typing import Any

request_id: ContextVar[str | None] = ContextVar("request_id", default=None)

FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"

# A phone number: mainland mobile numbers with or without +86 / 0086, and other E.164 numbers (+ and
# 8 to 15 digits), not inside a longer run of letters or digits (ids, hashes, timestamps).
_PHONE = re.compile(r"(?<![\w+])(?:(?:\+|00)86[ -]?)?1[3-9]\d{9}(?!\w)|(?<![\w+])\+\d{8,15}(?!\w)")
_BEARER = re.compile(
    r"(?i)\b(bearer\s+|(?:\w*token|device_?key|secret|password)[\"']?\s*[:=]\s*[\"']?)[\w.~+/=-]{6,}"
)
_JWT = re.compile(r"\beyJ[\w-]{4,}\.[\w-]{4,}\.[\w-]*")
_CODE = re.compile(r"(?i)\b(code|otp)([\"']?\s*[:=]\s*[\"']?)\d{4,8}\b")
_COORDINATE = re.compile(r"(?<![\w.])(-?\d{1,3}\.\d{2})\d{2,}(?![\w.])")


def _mask_phone(match: re.Match[str]) -> str:
    return "***" + match.group(0)[-2:]


def redact(text: str) -> str:
    """`text` without phone numbers, tokens, one-time codes and precise coordinates."""
    text = _JWT.sub("<token>", text)
    text = _BEARER.sub(lambda m: f"{m.group(1)}<redacted>", text)
    text = _CODE.sub(lambda m: f"{m.group(1)}{m.group(2)}<redacted>", text)
    text = _PHONE.sub(_mask_phone, text)
    return _COORDINATE.sub(r"\1", text)


class RequestIdFilter(logging.Filter):
    """Puts the current request id (or "-") on the record as `request_id`."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id.get() or "-"
        return True


class Formatter(logging.Formatter):
    """FORMAT, with the request id on each line of a multi-line record (a traceback) and, when
    `redacting`, personal data masked in the whole record, traceback included."""

    def __init__(self, fmt: str | None = FORMAT, datefmt: str | None = None, redacting: bool = False) -> None:
        super().__init__(fmt, datefmt)
        self.redacting = redacting

    def format(self, record: logging.LogRecord) -> str:
        if not hasattr(record, "request_id"):
            record.request_id = request_id.get() or "-"
        text = super().format(record)
        current = getattr(record, "request_id", "-")
        if "\n" in text and current != "-":
            prefix = f"[{current}] "
            first, *rest = text.split("\n")
            text = "\n".join([first, *(prefix + line for line in rest)])
        return redact(text) if self.redacting else text


def logging_config(level: str = "INFO", *, production: bool = False) -> dict[str, Any]:
    """The dictConfig of every process: one stderr handler on the root logger; uvicorn's loggers
    propagate to it (their own handlers would miss the request id and the redaction)."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": RequestIdFilter}},
        "formatters": {"default": {"()": Formatter, "redacting": production}},
        "handlers": {
            "default": {
                "class": "logging.StreamHandler",
                "formatter": "default",
                "filters": ["request_id"],
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"level": level.upper(), "handlers": ["default"]},
        "loggers": {
            name: {"handlers": [], "propagate": True, "level": level.upper()}
            for name in ("uvicorn", "uvicorn.error", "uvicorn.access")
        },
    }


def configure(level: str = "INFO", *, production: bool = False) -> None:
    logging.config.dictConfig(logging_config(level, production=production))
