"""A tiny schema language for the category-specific evidence a resident adds to a report.

A schema is data (it lives in `categories.json`), so a city can add a field without code:

    {"measured_db": {"type": "number", "min": 20, "max": 140},
     "intensity":   {"type": "int", "min": 1, "max": 5, "required": true},
     "material":    {"type": "enum", "values": ["plastic", "straw"]},
     "details":     {"type": "string", "max_length": 500},
     "observed_time": {"type": "time"}, "observed_at": {"type": "datetime"}, "recurring": {"type": "bool"}}

`validate_evidence` reports every problem at once, each with its field path, and returns values in a
JSON-ready canonical form (times "HH:MM[:SS]", date-times ISO 8601 in UTC) so they can be stored as is.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, time
from typing import Any

from kernel.errors import DomainError, DomainErrors, invalid
from reports.datafile import DataFileError, expect, only_keys, where

EVIDENCE_PATH: tuple[str, ...] = ("input", "evidence")


class FieldType(enum.StrEnum):
    INT = "int"
    NUMBER = "number"
    BOOL = "bool"
    STRING = "string"
    ENUM = "enum"
    TIME = "time"
    DATETIME = "datetime"


@dataclass(frozen=True, slots=True)
class FieldSpec:
    name: str
    type: FieldType
    required: bool = False
    min: float | None = None
    max: float | None = None
    max_length: int | None = None
    values: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class EvidenceSchema:
    fields: tuple[FieldSpec, ...] = ()

    def field(self, name: str) -> FieldSpec | None:
        return next((f for f in self.fields if f.name == name), None)


_SPEC_KEYS = ("type", "required", "min", "max", "max_length", "values")


def parse_schema(raw: Mapping[str, Any], *path: str | int) -> EvidenceSchema:
    """Build a schema from its JSON form; `path` only locates mistakes in the data file."""
    expect(raw, dict, *path)
    return EvidenceSchema(tuple(_parse_field(name, spec, *path, name) for name, spec in raw.items()))


def _parse_field(name: str, raw: Any, *path: str | int) -> FieldSpec:
    expect(raw, dict, *path)
    only_keys(raw, _SPEC_KEYS, *path)
    try:
        ftype = FieldType(raw.get("type"))
    except ValueError:
        raise DataFileError(f"{where(*path)}: type must be one of {[t.value for t in FieldType]}") from None
    numeric = ftype in (FieldType.INT, FieldType.NUMBER)
    if not numeric and ("min" in raw or "max" in raw):
        raise DataFileError(f"{where(*path)}: min/max only apply to int and number")
    if ftype is not FieldType.STRING and "max_length" in raw:
        raise DataFileError(f"{where(*path)}: max_length only applies to string")
    values = tuple(expect(raw.get("values", []), list, *path, "values"))
    if (ftype is FieldType.ENUM) != bool(values):
        raise DataFileError(f"{where(*path)}: an enum needs values, and only an enum has them")
    spec = FieldSpec(
        name=name,
        type=ftype,
        required=expect(raw.get("required", False), bool, *path, "required"),
        min=expect(raw.get("min"), (int, float, type(None)), *path, "min"),
        max=expect(raw.get("max"), (int, float, type(None)), *path, "max"),
        max_length=expect(raw.get("max_length"), (int, type(None)), *path, "max_length"),
        values=tuple(expect(v, str, *path, "values", i) for i, v in enumerate(values)),
    )
    if spec.min is not None and spec.max is not None and spec.min > spec.max:
        raise DataFileError(f"{where(*path)}: min is greater than max")
    return spec


def validate_evidence(
    schema: EvidenceSchema, values: Any, path: tuple[str, ...] = EVIDENCE_PATH
) -> dict[str, Any]:
    """Return the cleaned evidence or raise `DomainErrors` listing every bad field with its path.

    A `None` value counts as absent, because clients often send every form field.
    """
    if values is None:
        values = {}
    if not isinstance(values, Mapping):
        raise invalid("must be an object", *path)
    errors: list[DomainError] = [
        invalid("is not a known field for this category", *path, str(key))
        for key in values
        if schema.field(str(key)) is None
    ]
    cleaned: dict[str, Any] = {}
    for spec in schema.fields:
        value = values.get(spec.name)
        if value is None:
            if spec.required:
                errors.append(invalid("is required", *path, spec.name))
            continue
        try:
            cleaned[spec.name] = _clean(spec, value)
        except ValueError as exc:
            errors.append(invalid(str(exc), *path, spec.name))
    if errors:
        raise DomainErrors(errors)
    return cleaned


def _clean(spec: FieldSpec, value: Any) -> Any:
    match spec.type:
        case FieldType.INT:
            # Reject 3.0 and True: an int field that accepts them hides client bugs.
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError("must be a whole number")
            return _in_range(spec, value)
        case FieldType.NUMBER:
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise ValueError("must be a number")
            return _in_range(spec, float(value))
        case FieldType.BOOL:
            if not isinstance(value, bool):
                raise ValueError("must be true or false")
            return value
        case FieldType.STRING:
            if not isinstance(value, str):
                raise ValueError("must be text")
            text = value.strip()
            if spec.max_length is not None and len(text) > spec.max_length:
                raise ValueError(f"must be at most {spec.max_length} characters")
            return text
        case FieldType.ENUM:
            if value not in spec.values:
                raise ValueError(f"must be one of: {', '.join(spec.values)}")
            return value
        case FieldType.TIME:
            return _clean_time(value)
        case FieldType.DATETIME:
            return _clean_datetime(value)


def _in_range(spec: FieldSpec, value: float) -> float:
    if spec.min is not None and value < spec.min:
        raise ValueError(f"must be at least {_num(spec.min)}")
    if spec.max is not None and value > spec.max:
        raise ValueError(f"must be at most {_num(spec.max)}")
    return value


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def _clean_time(value: Any) -> str:
    message = "must be a time of day like 22:30"
    if not isinstance(value, str):
        raise ValueError(message)
    try:
        parsed = time.fromisoformat(value)
    except ValueError:
        raise ValueError(message) from None
    if parsed.tzinfo is not None or parsed.microsecond:
        raise ValueError(message)
    return parsed.isoformat(timespec="seconds" if parsed.second else "minutes")


def _clean_datetime(value: Any) -> str:
    message = "must be a date-time with a timezone, like 2025-05-01T22:30:00+08:00"
    if not isinstance(value, str):
        raise ValueError(message)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(message) from None
    # A naive time is ambiguous across the client's and the server's zones.
    if parsed.tzinfo is None:
        raise ValueError(message)
    return parsed.astimezone(UTC).isoformat()
