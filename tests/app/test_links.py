"""Explorer links written in Python decode to the same selection as the front end's codes."""

from __future__ import annotations

import base64
import zlib
from urllib.parse import parse_qsl

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relscope.app.links import selection_code, view_fragment


def decode(code: str, size: int) -> list[int]:
    """An independent reader of the code (the format of frontend/src/codec.ts)."""
    raw = zlib.decompress(base64.urlsafe_b64decode(code[1:] + "=" * (-len(code[1:]) % 4)), -15)
    if code[0] == "b":
        bits = np.unpackbits(np.frombuffer(raw, np.uint8), bitorder="little")[:size]
        return np.flatnonzero(bits).tolist()
    out, previous, value, shift = [], -1, 0, 0
    for byte in raw:
        value |= (byte & 0x7F) << shift
        if byte & 0x80:
            shift += 7
            continue
        previous += value + 1
        out.append(previous)
        value = shift = 0
    return out


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 3000).flatmap(lambda n: st.tuples(st.just(n), st.sets(st.integers(0, n - 1))))
)
def test_codes_round_trip(case):
    size, chosen = case
    for kind in (None, "b", "d"):
        code = selection_code(sorted(chosen), size, kind=kind)
        assert decode(code, size) == sorted(chosen) if chosen else code == ""


def test_dense_selections_use_the_bitset_and_sparse_ones_the_gaps():
    assert selection_code(range(0, 1000, 2), 1000)[0] == "b"
    assert selection_code([5, 70000], 100000)[0] == "d"
    assert len(selection_code(range(40000, 50000), 100000)) < 200


def test_out_of_range_positions_are_refused():
    with pytest.raises(ValueError, match=r"0\.\.9"):
        selection_code([10], 10)


def test_view_fragment_names_the_view():
    fragment = view_fragment("spray", "00000003", clustering="kmeans-02", selection=[1, 2], size=5)
    params = dict(parse_qsl(fragment[1:]))
    assert params == {
        "p": "0",
        "a": "spray",
        "c": "00000003",
        "k": "kmeans-02",
        "sel": selection_code([1, 2], 5),
    }
    assert decode(params["sel"], 5) == [1, 2]
    assert "sel" not in view_fragment("spray", "x")
