"""Reading the JSON data files that configure the reports domain (`reports/data/`); the helpers live in
`kernel.datafile`, shared with the city's working calendar."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kernel import datafile
from kernel.datafile import DataFileError, expect, only_keys, require, where

__all__ = ["DataFileError", "expect", "only_keys", "read_json", "require", "where"]


def read_json(source: str | Path) -> Any:
    """A bare file name is read from `reports/data/`; a `Path` from anywhere (a city's own tables)."""
    return datafile.read_json(source, "reports.data")
