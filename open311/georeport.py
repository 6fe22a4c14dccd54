"""Open311 GeoReport v2 over the same catalog and cases as the app.

- Services are the active categories; a category with typed evidence has `metadata: true`, and its
  definition lists the evidence fields as attributes (datatype, required, values).
- Requests are the public cases (`reports.access.public_cases`: the map's rule), shown as the public
  map shows them: no reporter, no description, no photos' metadata, the place at the public location
  (a ~200 m grid-cell centre for home-related categories), the opening time to the hour.
  `service_request_id` is the case's reference. Status: `closed` once resolved (or rejected, merged),
  else `open`. `agency_responsible` is the department, `expected_datetime` the resolution deadline,
  `status_notes` the public handling in words (reports.transparency).
- Posting a request is `reports.service.submit_report` for the service account's own account, with
  the same create-once rule: a retry with the same `client_token` creates nothing. The answer names
  the case once it is public (routed), and always a token to ask about it later (`tokens/{token}`).

Every refusal is an `Open311Error` (a list of descriptions with an HTTP status); nothing else is
raised for bad input.
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any

from tortoise import connections

from identity.models import ServiceAccount
from kernel.errors import DomainError, DomainErrors, ErrorCode
from kernel.geo import bbox_around, haversine_m
from kernel.limits import MAX_DATE, MIN_DATE
from kernel.rawsql import as_datetime, fetch, utc_seconds
from open311.formats import Open311Error
from reports import access, transparency
from reports.categories import Category
from reports.evidence import EVIDENCE_PATH, FieldSpec, FieldType
from reports.lifecycle import Status
from reports.models import Case, Report
from reports.service import Location, Submission, public_cases_query, submit_report
from reports.store import Snapshot, working_calendar

CLOSED = frozenset({Status.RESOLVED, Status.VERIFIED, Status.CLOSED, Status.REJECTED, Status.MERGED})
OPEN = frozenset(Status) - CLOSED
MAX_SPAN = timedelta(days=90)  # the spec's longest date range, and its default window
DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, MAX_PAGE = 50, 100, 10_000
DEFAULT_RADIUS_M, MAX_RADIUS_M = 1000.0, 50_000.0
MAX_IDS = 100
_TOKEN = re.compile(r"([1-9][0-9]{0,9})-([A-Za-z0-9_-]{8,64})")
_INTEGER = re.compile(r"-?[0-9]{1,15}")


def _names(category: Category, chinese: bool) -> str:
    return category.name.zh_cn if chinese else category.name.en


# --- services --------------------------------------------------------------------------------------


def services(snapshot: Snapshot, chinese: bool) -> list[dict[str, Any]]:
    return [
        {
            "service_code": c.code,
            "service_name": _names(c, chinese),
            "description": _names(c, not chinese),
            "metadata": bool(c.evidence.fields),
            "type": "realtime",
            "keywords": c.group.value.lower(),
            "group": c.group.value,
        }
        for c in snapshot.catalog
    ]


def _category(snapshot: Snapshot, code: str) -> Category:
    category = snapshot.category(code)
    if category is None:
        raise Open311Error(404, f"service_code: no service {code!r}; see services.json.")
    return category


_DATATYPES = {
    FieldType.INT: ("number", "A whole number"),
    FieldType.NUMBER: ("number", "A number"),
    FieldType.BOOL: ("singlevaluelist", "true or false"),
    FieldType.STRING: ("string", "Text"),
    FieldType.ENUM: ("singlevaluelist", "One of the values"),
    FieldType.TIME: ("string", "A time of day, HH:MM"),
    FieldType.DATETIME: ("datetime", "A date-time with a time zone (W3C), e.g. 2026-05-01T22:30:00+08:00"),
}


def _attribute(spec: FieldSpec, order: int) -> dict[str, Any]:
    datatype, description = _DATATYPES[spec.type]
    if spec.min is not None or spec.max is not None:
        low, high = ("-" if b is None else f"{b:g}" for b in (spec.min, spec.max))
        description += f" from {low} to {high}"
    if spec.max_length is not None:
        description += f", at most {spec.max_length} characters"
    values = list(spec.values) if spec.type is FieldType.ENUM else []
    if spec.type is FieldType.BOOL:
        values = ["true", "false"]
    return {
        "variable": True,
        "code": spec.name,
        "datatype": datatype,
        "required": spec.required,
        "datatype_description": description,
        "order": order,
        "description": spec.name.replace("_", " "),
        "values": [{"key": v, "name": v.replace("_", " ")} for v in values],
    }


def definition(snapshot: Snapshot, code: str) -> dict[str, Any]:
    category = _category(snapshot, code)
    attributes = [_attribute(spec, i) for i, spec in enumerate(category.evidence.fields, start=1)]
    return {"service_code": category.code, "attributes": attributes}


# --- reading requests ------------------------------------------------------------------------------


def _values(params: Mapping[str, Sequence[str]], name: str) -> list[str]:
    """Every value of a repeatable, comma-delimited parameter."""
    return [v.strip() for raw in params.get(name, ()) for v in raw.split(",") if v.strip()]


def _one(params: Mapping[str, Sequence[str]], name: str) -> str | None:
    values = params.get(name, ())
    if len(values) > 1:
        raise Open311Error(400, f"{name}: give it once.")
    return values[0].strip() if values else None


def _number(text: str, name: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise Open311Error(400, f"{name}: not a number: {text[:40]!r}.") from None
    if not math.isfinite(value):
        raise Open311Error(400, f"{name}: not a finite number.")
    return value


def _int(params: Mapping[str, Sequence[str]], name: str, default: int, low: int, high: int) -> int:
    text = _one(params, name)
    if text is None:
        return default
    if not _INTEGER.fullmatch(text) or not low <= int(text) <= high:
        raise Open311Error(400, f"{name}: a whole number from {low} to {high}.")
    return int(text)


def _datetime(text: str, name: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise Open311Error(400, f"{name}: use the W3C format, e.g. 2026-01-01T00:00:00Z.") from None
    if value.tzinfo is None:
        raise Open311Error(400, f"{name}: give a time zone, e.g. 2026-01-01T00:00:00Z.")
    if not MIN_DATE <= value.date() <= MAX_DATE:  # before converting: year 1 may not convert
        raise Open311Error(400, f"{name}: out of range.")
    return value


@dataclass(frozen=True, slots=True)
class RequestQuery:
    references: tuple[str, ...] = ()
    category_ids: tuple[int, ...] | None = None
    start: datetime | None = None
    end: datetime | None = None
    statuses: frozenset[Status] | None = None
    near: tuple[float, float, float] | None = None  # lat, long, radius in metres
    page: int = 1
    page_size: int = DEFAULT_PAGE_SIZE


def parse_query(snapshot: Snapshot, params: Mapping[str, Sequence[str]], now: datetime) -> RequestQuery:
    """The filters of GET requests; every problem at once as one 400."""
    problems: list[str] = []

    def attempt(fn: Any, *args: Any) -> Any:
        try:
            return fn(*args)
        except Open311Error as exc:
            problems.extend(exc.descriptions)
            return None

    references = _values(params, "service_request_id")
    if len(references) > MAX_IDS:
        problems.append(f"service_request_id: at most {MAX_IDS} ids.")
    codes = _values(params, "service_code")
    unknown = [c for c in codes if snapshot.category(c) is None]
    if unknown:
        problems.append(f"service_code: no service {unknown[0][:64]!r}; see services.json.")
    category_ids = tuple(snapshot.category_ids[c] for c in codes if c not in unknown) if codes else None
    statuses: set[Status] = set()
    for word in _values(params, "status"):
        if word.lower() not in ("open", "closed"):
            problems.append("status: open or closed (comma delimited).")
            break
        statuses |= OPEN if word.lower() == "open" else CLOSED
    start_text, end_text = attempt(_one, params, "start_date"), attempt(_one, params, "end_date")
    start = attempt(_datetime, start_text, "start_date") if start_text else None
    end = attempt(_datetime, end_text, "end_date") if end_text else None
    if start and end and end < start:
        problems.append("end_date: before start_date.")
    elif start and end and end - start > MAX_SPAN:
        problems.append("start_date, end_date: the range may not span more than 90 days.")
    near = attempt(_near, params)
    page = attempt(_int, params, "page", 1, 1, MAX_PAGE)
    page_size = attempt(_int, params, "page_size", DEFAULT_PAGE_SIZE, 1, MAX_PAGE_SIZE)
    if problems:
        raise Open311Error(400, *problems)
    if not references:  # the spec's default window: the 90 days before the end (or after the start)
        if start is None:
            # Up to the next whole minute: the same statement all minute long, so the database
            # reuses its plan (nothing is opened in the future).
            end = end or now.replace(second=0, microsecond=0) + timedelta(minutes=1)
            start = end - MAX_SPAN
        elif end is None:
            end = start + MAX_SPAN
    return RequestQuery(
        references=tuple(references),
        category_ids=category_ids,
        start=None if references else start,
        end=None if references else end,
        statuses=frozenset(statuses) if statuses else None,
        near=near,
        page=page,
        page_size=page_size,
    )


def _near(params: Mapping[str, Sequence[str]]) -> tuple[float, float, float] | None:
    lat_text, long_text, radius_text = _one(params, "lat"), _one(params, "long"), _one(params, "radius")
    if lat_text is None and long_text is None:
        if radius_text is not None:
            raise Open311Error(400, "radius: give lat and long with it.")
        return None
    if lat_text is None or long_text is None:
        raise Open311Error(400, "lat, long: give both.")
    problems = []
    lat, lon = _number(lat_text, "lat"), _number(long_text, "long")
    if not -90 <= lat <= 90:
        problems.append("lat: from -90 to 90.")
    if not -180 <= lon <= 180:
        problems.append("long: from -180 to 180.")
    radius = DEFAULT_RADIUS_M if radius_text is None else _number(radius_text, "radius")
    if not 0 < radius <= MAX_RADIUS_M:
        problems.append(f"radius: metres, more than 0 and at most {MAX_RADIUS_M:g}.")
    if problems:
        raise Open311Error(400, *problems)
    return lat, lon, radius


# One page by one statement (kernel.rawsql): the ORM's per-value date parsing cost more than the query.
# Newest first, in the order of the index on the opening time: a page stops after its rows, unsorted.
_SELECT = """
SELECT c.reference, c.status, c.category_id, d.name, c.created_at, c.updated_at, c.resolution_due_at,
       c.public_latitude, c.public_longitude, c.dispatched_at, c.resolved_at, c.closed_at,
       c.status_changed_at, c.rework_count
FROM cases c LEFT JOIN departments d ON d.id = c.department_id
WHERE {where}
ORDER BY c.created_at DESC, c.id DESC LIMIT {{}} OFFSET {{}}"""


_LITERAL = re.compile(r"[0-9][0-9 :.T+-]*")


def _moment(value: datetime) -> str:
    """A date-time as an SQL literal, spelled as the ORM writes it to this database (SQLite compares
    them as text). A literal, not a parameter: PostgreSQL's generic plan for a parameterised range
    guesses it holds a few rows and sorts the whole window instead of walking the index (10 ms, not 0.3)."""
    stored = Case._meta.fields_map["created_at"].to_db_value(value.astimezone(UTC), Case)
    # sqlite3 stores a datetime as isoformat(" "); PostgreSQL reads that spelling as well.
    text = stored if isinstance(stored, str) else stored.isoformat(" ")
    if not _LITERAL.fullmatch(text):  # digits and separators only are safe to inline
        raise ValueError(f"unexpected date-time spelling {text!r}")
    return f"'{text}'"


async def _page(conditions: list[tuple[str, Sequence[Any]]], offset: int, limit: int) -> list[Any]:
    """Public cases matching every (SQL with `{}` marks, values) condition, one page of them."""
    column, value = access.PUBLIC_RULE  # the public map's rule
    where = " AND ".join([f"c.{column} = {{}}", *(sql for sql, _ in conditions)])
    params: list[Any] = [value, *(v for _, values in conditions for v in values), limit, offset]
    return await fetch(connections.get("default"), _SELECT.format(where=where), params)


def _marks(values: Sequence[Any]) -> str:
    return ", ".join("{}" for _ in values)


def _hour(stamp: str) -> str:
    """A kernel.rawsql.utc_seconds stamp cut to its hour."""
    return f"{stamp[:14]}00:00+00:00"


def _record(row: Sequence[Any], snapshot: Snapshot, chinese: bool, tz: tzinfo) -> dict[str, Any]:
    (reference, status, category_id, department, created, updated, due, lat, lon, dispatched, resolved,
     closed, changed, rework_count) = row  # fmt: skip
    code = snapshot.category_codes.get(category_id, "")
    category = snapshot.category(code)
    # Times as text, days from the text (a page is a hundred rows of six times each: parsing and
    # converting every one cost more than the query).
    opened, due_at = utc_seconds(created), None if due is None else utc_seconds(due)

    def day(value: Any) -> date | None:
        return None if value is None else transparency.day_of_stamp(tz, utc_seconds(value))

    # The rows are public cases (the page's WHERE is the public rule): their handling is the public's.
    notes = transparency.handling_of_days(
        transparency.HandlingDays(
            status=Status(status),
            received_on=transparency.day_of_stamp(tz, opened),
            dispatched_on=day(dispatched),
            resolved_on=day(resolved),
            closed_on=day(closed),
            resolution_due_on=day(due),
            status_changed_on=day(changed),
            on_time=None if resolved is None or due is None else as_datetime(resolved) <= as_datetime(due),
            rework_count=rework_count,
        )
    ).status_notes
    # The public view's times: the hour it was opened; a change is never shown as earlier than that
    # (the stamps have one spelling, so the later is the greater text).
    requested = _hour(opened)
    return {
        "service_request_id": reference,
        "status": "closed" if status in CLOSED else "open",
        "status_notes": notes,
        "service_name": _names(category, chinese) if category else code,
        "service_code": code,
        "description": None,  # the resident's words stay private
        "agency_responsible": department,
        "service_notice": None,
        "requested_datetime": requested,
        "updated_datetime": max(requested, _hour(utc_seconds(updated))),
        "expected_datetime": due_at,
        "address": None,
        "address_id": None,
        "zipcode": None,
        "lat": lat,
        "long": lon,
        "media_url": None,
    }


async def find_requests(snapshot: Snapshot, query: RequestQuery, chinese: bool) -> list[dict[str, Any]]:
    """One page of public cases, newest first."""
    conditions: list[tuple[str, Sequence[Any]]] = []
    if query.category_ids is not None:
        conditions.append((f"c.category_id IN ({_marks(query.category_ids)})", query.category_ids))
    if query.references:
        conditions.append((f"c.reference IN ({_marks(query.references)})", query.references))
    if query.statuses is not None:
        statuses = sorted(s.value for s in query.statuses)
        conditions.append((f"c.status IN ({_marks(statuses)})", statuses))
    if query.start is not None:
        conditions.append((f"c.created_at >= {_moment(query.start)}", []))
    if query.end is not None:
        conditions.append((f"c.created_at <= {_moment(query.end)}", []))
    offset = (query.page - 1) * query.page_size
    if query.near is not None:
        # The box around the circle narrows by index; the exact distance (to the public location)
        # then picks the page.
        lat, lon, radius = query.near
        box = public_cases_query(bbox_around(lat, lon, radius), query.category_ids, None)
        candidates = await box.values_list("id", "public_latitude", "public_longitude")
        inside = [i for i, la, lo in candidates if haversine_m(lat, lon, la, lo) <= radius]
        if not inside:
            return []
        conditions.append((f"c.id IN ({_marks(inside)})", inside))
    rows = await _page(conditions, offset, query.page_size)
    tz = working_calendar().tz
    return [_record(row, snapshot, chinese, tz) for row in rows]


async def find_request(snapshot: Snapshot, reference: str, chinese: bool) -> dict[str, Any]:
    rows = await _page([("c.reference = {}", [reference[:32]])], 0, 1)
    if not rows:
        raise Open311Error(404, f"service_request_id: no request {reference[:32]!r}.")
    return _record(rows[0], snapshot, chinese, working_calendar().tz)


def _token(account_id: int, client_token: str) -> str:
    return f"{account_id}-{client_token}"


async def find_token(token: str) -> dict[str, Any]:
    """The request a token stands for; its `service_request_id` is empty until the case is public."""
    missing = Open311Error(404, "token: no such token.")
    match = _TOKEN.fullmatch(token)
    if match is None:
        raise missing
    account = await ServiceAccount.get_or_none(id=int(match.group(1)))
    if account is None:
        raise missing
    report = await Report.get_or_none(reporter_id=account.user_id, client_id=match.group(2))
    if report is None:
        raise missing
    case = await Case.get(id=report.case_id)
    return {"service_request_id": case.reference if case.public else None, "token": token}


# --- posting a request -----------------------------------------------------------------------------


_ATTRIBUTE = re.compile(r"attribute\[([^\[\]]{1,64})\](\[\])?")
# What the form names as our submission's fields (for naming the parameter at fault).
_PARAMETERS = {"categoryCode": "service_code", "clientId": "client_token", "description": "description"}
_STATUS = {
    ErrorCode.INVALID: 400,
    ErrorCode.UNAUTHENTICATED: 401,
    ErrorCode.FORBIDDEN: 403,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.CONFLICT: 409,
    ErrorCode.RATE_LIMITED: 429,
}


def _typed(spec: FieldSpec | None, text: str) -> Any:
    """A form value as the evidence field's type, where it spells one; else as given (then refused)."""
    if spec is None:
        return text
    if spec.type is FieldType.INT and _INTEGER.fullmatch(text):
        return int(text)
    if spec.type is FieldType.NUMBER:
        try:
            value = float(text)
        except ValueError:
            return text
        return value if math.isfinite(value) else text
    if spec.type is FieldType.BOOL and text.lower() in ("true", "false"):
        return text.lower() == "true"
    return text


def _parameter(error: DomainError) -> str:
    path = error.field or []
    if list(path[: len(EVIDENCE_PATH)]) == list(EVIDENCE_PATH) and len(path) > len(EVIDENCE_PATH):
        return f"attribute[{path[len(EVIDENCE_PATH)]}]"
    if "location" in path:
        return {"latitude": "lat", "longitude": "long"}.get(path[-1], "lat")
    return _PARAMETERS.get(path[-1], path[-1]) if path else "request"


def as_open311(error: DomainError) -> Open311Error:
    errors = error.errors if isinstance(error, DomainErrors) else [error]
    return Open311Error(_STATUS.get(error.code, 400), *(f"{_parameter(e)}: {e.message}" for e in errors))


@dataclass(frozen=True, slots=True)
class PostedRequest:
    record: dict[str, Any]
    created: bool


async def post_request(
    snapshot: Snapshot, account: ServiceAccount, form: Iterable[tuple[str, str]]
) -> PostedRequest:
    """Create a service request (once per `client_token`) for the service account."""
    params: dict[str, list[str]] = {}
    attributes: dict[str, str] = {}
    problems: list[str] = []
    for key, value in form:
        match = _ATTRIBUTE.fullmatch(key)
        if match:
            if match.group(1) in attributes:
                problems.append(f"{key}: give it once.")
            attributes[match.group(1)] = value
        else:
            params.setdefault(key, []).append(value)
    single: dict[str, str | None] = {}
    for name in ("service_code", "lat", "long", "address_string", "description", "client_token", "media_url"):
        try:
            single[name] = _one(params, name)
        except Open311Error as exc:
            problems.extend(exc.descriptions)
            single[name] = None
    code = single["service_code"]
    category = snapshot.category(code) if code else None
    if not code:
        problems.append("service_code: required.")
    elif category is None:
        problems.append(f"service_code: no service {code[:64]!r}; see services.json.")
    if single["media_url"]:
        problems.append("media_url: not fetched here; send photos through the app's upload API.")
    lat_text, long_text = single["lat"], single["long"]
    point: tuple[float, float] | None = None
    if lat_text is None or long_text is None:
        if single["address_string"]:
            problems.append("address_string: this service has no geocoder; give lat and long.")
        else:
            problems.append("lat, long: required.")
    else:
        try:
            point = (_number(lat_text, "lat"), _number(long_text, "long"))
        except Open311Error as exc:
            problems.extend(exc.descriptions)
    if problems:
        raise Open311Error(400, *problems)
    assert category is not None and point is not None and code is not None
    client_token = single["client_token"] or uuid.uuid4().hex
    evidence = {name: _typed(category.evidence.field(name), text) for name, text in attributes.items()}
    submission = Submission(
        client_id=client_token,
        category_code=code,
        location=Location(point[0], point[1]),
        description=single["description"] or "",
        evidence=evidence,
        origin={"channel": "open311", "service_account": account.prefix},
    )
    try:  # the key's user came with its account (identity.service_accounts.authenticate_key)
        result = await submit_report(snapshot, account.user, submission, per_hour_limit=None)
    except DomainError as exc:
        raise as_open311(exc) from None
    case = result.case
    record = {
        "service_request_id": case.reference if case.public else None,
        "token": _token(account.id, client_token),
        "service_notice": None,
        "account_id": None,
    }
    return PostedRequest(record, result.created)
