"""Writing a table to a file, a batch at a time: CSV (UTF-8 with a byte order mark, so Excel reads
Chinese text), XLSX (xlsxwriter's constant-memory mode: each row is flushed as it is written) and
GeoJSON (a FeatureCollection of points, one feature per line). Nothing keeps more than a batch."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import IO, Any, Protocol

import xlsxwriter

from exports.models import ExportFormat

XLSX_MAX_ROWS = 1_048_576  # per sheet, the header included; the rest goes on a next sheet
EXTENSIONS = {ExportFormat.CSV: "csv", ExportFormat.XLSX: "xlsx", ExportFormat.GEOJSON: "geojson"}
CONTENT_TYPES = {
    ExportFormat.CSV: "text/csv; charset=utf-8",
    ExportFormat.XLSX: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ExportFormat.GEOJSON: "application/geo+json",
}


class Writer(Protocol):
    def write(self, rows: Sequence[Sequence[Any]]) -> None: ...
    def close(self) -> None: ...


def _text(value: Any) -> Any:
    """Times in ISO 8601 with their UTC offset; everything else as it is."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return value


class CsvWriter:
    def __init__(self, path: Path, columns: Sequence[str]) -> None:
        self._file: IO[str] = path.open("w", encoding="utf-8-sig", newline="")
        self._csv = csv.writer(self._file)
        self._csv.writerow(columns)

    def write(self, rows: Sequence[Sequence[Any]]) -> None:
        self._csv.writerows(rows)  # times come as text (exports.tables.Batches), days as dates

    def close(self) -> None:
        self._file.close()


class XlsxWriter:
    def __init__(self, path: Path, columns: Sequence[str]) -> None:
        self._book = xlsxwriter.Workbook(str(path), {"constant_memory": True, "strings_to_numbers": False})
        self._columns = list(columns)
        self._when = self._book.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"})
        self._day = self._book.add_format({"num_format": "yyyy-mm-dd"})
        self._new_sheet()

    def _new_sheet(self) -> None:
        self._sheet = self._book.add_worksheet()
        self._sheet.write_row(0, 0, self._columns)
        self._next = 1

    def write(self, rows: Sequence[Sequence[Any]]) -> None:
        for row in rows:
            if self._next == XLSX_MAX_ROWS:
                self._new_sheet()
            for col, value in enumerate(row):
                if value is None:
                    continue
                if isinstance(value, datetime):  # Excel has no time zones: UTC, as the column says
                    self._sheet.write_datetime(
                        self._next, col, value.astimezone(UTC).replace(tzinfo=None), self._when
                    )
                elif isinstance(value, date):
                    self._sheet.write_datetime(self._next, col, datetime(value.year, value.month, value.day),
                                               self._day)  # fmt: skip
                else:
                    self._sheet.write(self._next, col, value)
            self._next += 1

    def close(self) -> None:
        self._book.close()


class GeoJsonWriter:
    def __init__(self, path: Path, columns: Sequence[str], point: tuple[int, int]) -> None:
        self._file: IO[str] = path.open("w", encoding="utf-8")
        self._columns = list(columns)
        self._lat, self._lon = point
        self._first = True
        self._file.write('{"type":"FeatureCollection","features":[\n')

    def write(self, rows: Sequence[Sequence[Any]]) -> None:
        parts = []
        for row in rows:
            feature = {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [row[self._lon], row[self._lat]]},
                "properties": {k: _text(v) for k, v in zip(self._columns, row, strict=True)},
            }
            parts.append(json.dumps(feature, ensure_ascii=False, separators=(",", ":")))
        if parts:
            self._file.write(("" if self._first else ",\n") + ",\n".join(parts))
            self._first = False

    def close(self) -> None:
        self._file.write("\n]}\n")
        self._file.close()


def open_writer(
    fmt: ExportFormat, path: Path, columns: Sequence[str], point: tuple[int, int] | None
) -> Writer:
    if fmt is ExportFormat.CSV:
        return CsvWriter(path, columns)
    if fmt is ExportFormat.XLSX:
        return XlsxWriter(path, columns)
    assert point is not None, "GeoJSON is refused for tables without a location (exports.access)"
    return GeoJsonWriter(path, columns, point)
