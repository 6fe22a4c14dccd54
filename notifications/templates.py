"""Message templates as data: one title and body per message kind and language.

The city edits `notifications/data/templates.json` (or points `NOTIFICATION_TEMPLATES_PATH` at its
own copy). Every kind has both languages; placeholders are filled from the case or rule, never with
anyone's personal data. A kind marked `sms` also goes out by SMS to those who opted in.
"""

from __future__ import annotations

import functools
import json
import string
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from notifications.models import Language

DEFAULT_PATH = Path(__file__).parent / "data" / "templates.json"
PLACEHOLDERS = frozenset(
    {"reference", "category", "status", "rule", "period", "done", "required", "last_day", "area", "deadline"}
)


@dataclass(frozen=True, slots=True)
class Rendered:
    title: str
    body: str


@dataclass(frozen=True, slots=True)
class Templates:
    texts: Mapping[str, Mapping[Language, tuple[str, str]]]  # kind -> language -> (title, body)
    sms_kinds: frozenset[str]
    status_texts: Mapping[Language, Mapping[str, str]]

    @property
    def kinds(self) -> frozenset[str]:
        return frozenset(self.texts)

    def render(self, kind: str, language: Language, params: Mapping[str, Any]) -> Rendered:
        title, body = self.texts[kind][language]
        values = _Blank({key: str(value) for key, value in params.items()})
        return Rendered(title.format_map(values), body.format_map(values))

    def status_text(self, key: str, language: Language) -> str:
        return self.status_texts.get(language, {}).get(key, key)


class _Blank(dict[str, str]):
    """A placeholder the change does not fill reads as empty rather than failing the planning."""

    def __missing__(self, key: str) -> str:
        return ""


def parse_templates(raw: Any) -> Templates:
    """Check the file's shape: every kind in every language, only known placeholders."""
    if not isinstance(raw, dict) or not isinstance(raw.get("kinds"), dict):
        raise ValueError("templates: expected an object with `kinds`")
    texts: dict[str, dict[Language, tuple[str, str]]] = {}
    sms: set[str] = set()
    for kind, entry in raw["kinds"].items():
        if not isinstance(entry, dict):
            raise ValueError(f"templates: {kind} is not an object")
        if entry.get("sms", False):
            sms.add(kind)
        texts[kind] = {}
        for language in Language:
            text = entry.get(language.value)
            if not isinstance(text, dict) or not all(isinstance(text.get(k), str) for k in ("title", "body")):
                raise ValueError(f"templates: {kind} needs a title and body in {language.value}")
            for part in (text["title"], text["body"]):
                names = {name for _, name, _, _ in string.Formatter().parse(part) if name}
                if unknown := names - PLACEHOLDERS:
                    raise ValueError(f"templates: {kind} ({language.value}) uses unknown {sorted(unknown)}")
            texts[kind][language] = (text["title"], text["body"])
    status = raw.get("status", {})
    status_texts = {Language(lang): dict(values) for lang, values in status.items()}
    return Templates(texts, frozenset(sms), status_texts)


@functools.cache
def load_templates(path: Path = DEFAULT_PATH) -> Templates:
    return parse_templates(json.loads(path.read_text(encoding="utf-8")))
