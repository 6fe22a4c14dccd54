"""The two wire formats of GeoReport v2: JSON and XML, with the spec's roots and element names.

Every answer is a list of flat records (a service, a request, an error) under a root: JSON is the bare
array, XML is `<root><item>...</item></root>`. A record's value is text, a number, a boolean, None
(an empty element; left out of JSON only where the spec says "optional": we always send the key), or
a nested list of records (a service definition's attributes and values).
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping, Sequence
from typing import Any
from xml.sax.saxutils import escape

import pydantic_core


class Format(enum.StrEnum):
    JSON = "json"
    XML = "xml"

    @property
    def media_type(self) -> str:
        return "application/json; charset=utf-8" if self is Format.JSON else "text/xml; charset=utf-8"


class Open311Error(Exception):
    """A refusal in the spec's shape: an HTTP status and one or more descriptions."""

    def __init__(self, status: int, *descriptions: str) -> None:
        super().__init__(descriptions[0])
        self.status = status
        self.descriptions = list(descriptions)

    def records(self) -> list[dict[str, Any]]:
        return [{"code": self.status, "description": d} for d in self.descriptions]


def negotiate(suffix: str | None, accept: str) -> Format:
    """The format a request asks for: its `.json`/`.xml` suffix, else its Accept header (XML only when
    it prefers an XML type to JSON), else JSON."""
    if suffix:
        return Format(suffix)
    best: tuple[float, Format] | None = None
    for part in accept.split(","):
        media, _, params = part.strip().partition(";")
        media = media.strip().lower()
        fmt = {"application/json": Format.JSON, "application/xml": Format.XML, "text/xml": Format.XML}.get(
            media
        )
        if fmt is None:
            continue
        quality = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if best is None or quality > best[0]:
            best = (quality, fmt)
    return best[1] if best and best[0] > 0 else Format.JSON


def _xml_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return escape(str(value))


def _xml_record(tag: str, record: Mapping[str, Any], children: Mapping[str, str]) -> str:
    parts = [f"<{tag}>"]
    for key, value in record.items():
        if isinstance(value, list):
            child = children[key]
            inner = "".join(_xml_record(child, item, children) for item in value)
            parts.append(f"<{key}>{inner}</{key}>")
        else:
            parts.append(f"<{key}>{_xml_value(value)}</{key}>")
    parts.append(f"</{tag}>")
    return "".join(parts)


# The element of each item of a nested list, by the list's name.
_CHILDREN = {"attributes": "attribute", "values": "value"}


# pydantic-core's encoder writes a page ten times faster than json.dumps, in the same bytes but for
# numbers from 1e-9 to 1e-4, which it spells "0.00001" or "1.5e-7" where json.dumps writes "1e-05" and
# "1.5e-07". Where the body may hold such a spelling, json.dumps writes it, so the bytes never change.
def _json(value: Any) -> bytes:
    body = pydantic_core.to_json(value)
    if _other_spelling(body):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()
    return body


def _other_spelling(body: bytes) -> bool:
    # Plain searches: a regular expression, or a walk over the values, cost more than the encoding.
    # Text that happens to hold "e-" only costs its page the slower encoder.
    if b"e-" in body:
        return True
    at = body.find(b"0.0000")
    while at != -1:
        if at == 0 or not body[at - 1 : at].isdigit():  # "0.00001", not "120.00001"
            return True
        at = body.find(b"0.0000", at + 1)
    return False


def render_list(fmt: Format, root: str, item: str, records: Sequence[Mapping[str, Any]]) -> bytes:
    if fmt is Format.JSON:
        return _json(list(records))
    body = "".join(_xml_record(item, r, _CHILDREN) for r in records)
    return f'<?xml version="1.0" encoding="utf-8"?><{root}>{body}</{root}>'.encode()


def render_object(fmt: Format, root: str, record: Mapping[str, Any]) -> bytes:
    """One object under its own root (a service definition)."""
    if fmt is Format.JSON:
        return _json(record)
    return f'<?xml version="1.0" encoding="utf-8"?>{_xml_record(root, record, _CHILDREN)}'.encode()


def render_errors(fmt: Format, error: Open311Error) -> bytes:
    return render_list(fmt, "errors", "error", error.records())
