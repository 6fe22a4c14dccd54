"""The input limits, as data: what the API boundary accepts before anything reaches a domain or a driver.

Lengths are counted in characters and go by the kind of field; a field is of the kind its name says
(`TEXT_KINDS`), and a name not listed is a short `name`-like string. These are hard caps, checked
before anything is read: a domain may refuse shorter values with its own rules (a report's
description, 2000) and then reports them together with the form's other problems. docs/api.md
lists them.
"""

from __future__ import annotations

from datetime import date

# A database id: the positive range of our primary keys, PostgreSQL's INTEGER (a larger id in a query
# overflows its parameter on PostgreSQL, though SQLite would take it).
MIN_ID = 1
MAX_ID = 2**31 - 1

# Dates and times anyone may send: far enough both ways for any record, and clear of the calendar's
# edges (year 1 with a positive offset, or 9999 with a negative one, is not a moment Python can hold).
MIN_DATE = date(1900, 1, 1)
MAX_DATE = date(2999, 12, 31)

# The longest string of each kind of field.
TEXT_LIMITS: dict[str, int] = {
    "code": 64,  # category, department, rule, area codes; client ids
    "short": 32,  # jurisdiction codes, phone numbers, months, regions
    "name": 200,  # names, logins, ids, cursors; also any field not listed below
    "secret": 1024,  # passwords and tokens
    "url": 2048,  # webhook URLs
    "filter": 200,  # free-text search
    "text": 4000,  # notes, reasons, comments, notices, a rule's source
    "description": 8000,  # a report's description
    "document": 20 * 1024 * 1024,  # a GPX or GraphQL document sent as text (each has its own cap)
}

# Input field (and argument) names -> their kind; any other name is a "name".
TEXT_KINDS: dict[str, str] = {
    "code": "code",
    "category": "code",
    "categoryCode": "code",
    "categoryCodes": "code",
    "clientId": "code",
    "departmentCode": "code",
    "departmentKind": "code",
    "kind": "code",
    "slaPolicy": "code",
    "username": "code",
    "login": "code",
    "sha256": "code",
    "jurisdictionCode": "short",
    "phone": "short",
    "month": "short",
    "fromMonth": "short",
    "toMonth": "short",
    "region": "short",
    "password": "secret",
    "url": "url",
    "refreshToken": "secret",
    "deviceKey": "secret",
    "text": "filter",
    "note": "text",
    "reason": "text",
    "comment": "text",
    "source": "text",
    "noticeZh": "text",
    "noticeEn": "text",
    "description": "description",
    "gpx": "document",
    "document": "document",  # a trusted GraphQL document (its own cap applies: trusted/service.py)
}

# Inside a JSON value (evidence, rule conditions, GeoJSON): every string, and the keys of one object.
JSON_MAX_STRING = 4000
JSON_MAX_KEYS = 200

# A refusal lists at most this many problems: a hostile input gets a short answer, not one per key.
MAX_PROBLEMS = 20


def max_length(field_name: str) -> int:
    return TEXT_LIMITS[TEXT_KINDS.get(field_name, "name")]


def parse_id(text: str) -> int | None:
    """The id a canonical decimal spells (no sign, padding, separators or spaces), if in range."""
    if not (text.isascii() and text.isdigit()) or text.startswith("0") or len(text) > 19:
        return None
    value = int(text)
    return value if value <= MAX_ID else None
