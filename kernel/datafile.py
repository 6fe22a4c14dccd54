"""Reading the JSON data files that configure the domain, with errors that say where a file is wrong."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any


class DataFileError(ValueError):
    """A data file is malformed: a deployment mistake, reported at load time rather than per request."""


def read_json(source: str | Path, package: str = "kernel.data") -> Any:
    """A bare file name is read from `package` (a `data` folder); a `Path` from anywhere (a city's own
    tables)."""
    if isinstance(source, Path):
        text = source.read_text(encoding="utf-8")
    else:
        text = resources.files(package).joinpath(source).read_text(encoding="utf-8")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataFileError(f"{source}: not valid JSON: {exc}") from exc


def where(*path: str | int) -> str:
    return ".".join(str(p) for p in path) or "<root>"


def require(obj: Mapping[str, Any], key: str, kind: type | tuple[type, ...], *path: str | int) -> Any:
    if key not in obj:
        raise DataFileError(f"{where(*path, key)}: missing")
    return expect(obj[key], kind, *path, key)


def expect(value: Any, kind: type | tuple[type, ...], *path: str | int) -> Any:
    # bool is an int in Python; a data file saying `true` where a number belongs is a mistake.
    if isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
        raise DataFileError(f"{where(*path)}: expected {kind}, got a boolean")
    if not isinstance(value, kind):
        raise DataFileError(f"{where(*path)}: expected {kind}, got {type(value).__name__}")
    return value


def only_keys(obj: Mapping[str, Any], allowed: Sequence[str], *path: str | int) -> None:
    unknown = sorted(set(obj) - set(allowed))
    if unknown:
        raise DataFileError(f"{where(*path)}: unknown keys {unknown}")
