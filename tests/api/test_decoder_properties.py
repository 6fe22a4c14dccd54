"""Property tests of the two decoders every client value passes through: global ids and cursors.

Whatever text arrives, a decoder either returns a value we could have issued or refuses with
INVALID; it never raises anything else (which would be an INTERNAL answer)."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st
from strawberry.relay import to_base64

from kernel.errors import DomainError, ErrorCode
from kernel.limits import MAX_DATE, MAX_ID, MIN_DATE, MIN_ID
from schema.node import decode_id, parse_global_id
from schema.pagination import decode_cursor, encode_cursor

ids = st.integers(min_value=MIN_ID, max_value=MAX_ID)
type_names = st.sampled_from(["Case", "Report", "Photo", "Patrol", "User", "Department"])
moments = st.datetimes(
    min_value=datetime.combine(MIN_DATE, datetime.min.time()) + timedelta(days=1),
    max_value=datetime.combine(MAX_DATE, datetime.min.time()),
    timezones=st.just(UTC),
)
key_values = st.one_of(
    st.none(),
    ids,
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=64),
    moments,
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


def _refused(call: Callable[[], object]) -> bool:
    try:
        call()
    except DomainError as exc:
        assert exc.code is ErrorCode.INVALID
        return True
    return False


@given(type_names, ids)
def test_an_issued_global_id_decodes_to_what_it_names(type_name: str, row_id: int) -> None:
    global_id = to_base64(type_name, row_id)
    assert parse_global_id(global_id) == (type_name, row_id)
    assert decode_id(global_id, type_name) == row_id


@given(st.text())
def test_any_text_is_an_issued_global_id_or_nothing(text: str) -> None:
    parsed = parse_global_id(text)
    if parsed is not None:
        type_name, row_id = parsed
        assert MIN_ID <= row_id <= MAX_ID
        assert to_base64(type_name, row_id) == text  # one object, one spelling
    else:
        assert _refused(lambda: decode_id(text, "Case", "input", "caseId"))


@given(st.text(), st.integers())
def test_an_id_of_another_spelling_or_range_is_refused(type_name: str, number: int) -> None:
    forged = base64.b64encode(f"{type_name}:{number}".encode("utf-8", "surrogatepass")).decode()
    parsed = parse_global_id(forged)
    if parsed is not None:
        assert parsed == (type_name, number) and MIN_ID <= number <= MAX_ID


@given(st.lists(key_values, min_size=1, max_size=3))
def test_an_issued_cursor_decodes_to_its_key(values: list[object]) -> None:
    order = [f"k{i}" for i in range(len(values))]
    assert decode_cursor(encode_cursor(values), order) == values


@given(st.text(), st.integers(min_value=1, max_value=3))
def test_any_text_is_a_cursor_of_the_right_shape_or_invalid(text: str, keys: int) -> None:
    order = [f"k{i}" for i in range(keys)]
    try:
        decoded = decode_cursor(text, order)
    except DomainError as exc:
        assert exc.code is ErrorCode.INVALID
    else:
        assert len(decoded) == keys


@given(json_values, st.integers(min_value=1, max_value=3))
def test_a_forged_cursor_of_any_json_is_a_key_or_invalid(value: object, keys: int) -> None:
    cursor = base64.urlsafe_b64encode(json.dumps(value).encode()).decode()
    order = [f"k{i}" for i in range(keys)]
    try:
        decoded = decode_cursor(cursor, order, [int] * keys)
    except DomainError as exc:
        assert exc.code is ErrorCode.INVALID
    else:
        assert len(decoded) == keys
        assert all(v is None or (isinstance(v, int) and -MAX_ID - 1 <= v <= MAX_ID) for v in decoded)
