"""``safejson.loads`` accepts exactly the JSON every part of Callbridge can store and show."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from integrations import safejson
from integrations.errors import BadInput

values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=30,
)


def _storable(value: Any, depth: int = 0) -> bool:
    if isinstance(value, bool) or value is None:
        return True
    if isinstance(value, int):
        return safejson.INT_MIN <= value <= safejson.INT_MAX
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, str):
        return "\x00" not in value and not any("\ud800" <= c <= "\udfff" for c in value)
    if depth >= safejson.MAX_DEPTH:
        return False
    items = value.items() if isinstance(value, dict) else enumerate(value)
    return all(
        (_storable(k, depth) if isinstance(k, str) else True) and _storable(v, depth + 1)
        for k, v in items
    )


@given(values, st.booleans())
def test_accepted_exactly_when_storable(value: Any, ascii_only: bool) -> None:
    text = json.dumps(value, ensure_ascii=ascii_only)  # NaN, huge ints, escapes all written
    try:
        body = text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate written raw: not UTF-8, refused as such
        body = text.encode("utf-8", "surrogatepass")
    if _storable(value):
        assert safejson.loads(body) == json.loads(text)
    else:
        with pytest.raises(BadInput):
            safejson.loads(body)


@given(st.integers(min_value=1, max_value=200))
def test_nesting_beyond_the_limit_is_refused(depth: int) -> None:
    body = ("[" * depth + "]" * depth).encode()
    if depth > safejson.MAX_DEPTH:
        with pytest.raises(BadInput, match="nested deeper"):
            safejson.loads(body)
    else:
        assert safejson.loads(body) is not None


def test_brackets_inside_strings_do_not_count_as_nesting() -> None:
    body = json.dumps({"note": "[" * 500}).encode()
    assert safejson.loads(body) == {"note": "[" * 500}


@pytest.mark.parametrize("text", ['"\\u0000"', '"\\ud800"', '"\\udc00x"', "1e999", "NaN"])
def test_each_unstorable_escape_or_number_is_refused(text: str) -> None:
    with pytest.raises(BadInput):
        safejson.loads(text.encode())
