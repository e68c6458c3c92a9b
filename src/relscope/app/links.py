"""Explorer links: URL fragments that open a view, with the selection in the compact code
the front end writes (``frontend/src/codec.ts``), so a command can point at what it found.

A selection of category positions ``0..size-1`` is written as the shorter of a bitset and
LEB128 varints of the gaps between sorted positions, deflated (raw, no zlib header) and in
base64url without padding, prefixed ``b`` or ``d``.
"""

from __future__ import annotations

import base64
import zlib
from collections.abc import Sequence
from urllib.parse import urlencode

import numpy as np

__all__ = ["selection_code", "view_fragment"]


def _deflate(data: bytes) -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    return packer.compress(data) + packer.flush()


def _base64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _varints(values: np.ndarray) -> bytes:
    out = bytearray()
    for value in values.tolist():
        while value >= 0x80:
            out.append((value & 0x7F) | 0x80)
            value >>= 7
        out.append(value)
    return bytes(out)


def selection_code(
    positions: Sequence[int] | np.ndarray, size: int, *, kind: str | None = None
) -> str:
    """The code of a selection of positions in ``0..size-1`` ("" when empty).

    ``kind`` forces the bitset (``"b"``) or the gaps (``"d"``); by default the shorter wins.

    >>> selection_code([], 10)
    ''
    >>> selection_code([0, 1, 200], 1000)[0]
    'd'
    """
    chosen = np.unique(np.asarray(positions, dtype=np.int64))
    if chosen.size == 0:
        return ""
    if chosen[0] < 0 or chosen[-1] >= size:
        raise ValueError(f"selection positions must lie in 0..{size - 1}")
    mask = np.zeros(size, dtype=bool)
    mask[chosen] = True
    bits = _deflate(np.packbits(mask, bitorder="little").tobytes())
    gaps = _deflate(_varints(np.diff(chosen, prepend=-1) - 1))
    if kind not in (None, "b", "d"):
        raise ValueError(f"kind must be 'b' or 'd', got {kind!r}")
    if kind == "b" or (kind is None and len(bits) < len(gaps)):
        return "b" + _base64url(bits)
    return "d" + _base64url(gaps)


def view_fragment(
    analysis: str,
    category: str,
    *,
    project: int = 0,
    clustering: str | None = None,
    embedding: str | None = None,
    selection: Sequence[int] | np.ndarray = (),
    size: int = 0,
    mode: str | None = None,
) -> str:
    """The ``#...`` fragment of an Explorer view; what is left out, the page chooses."""
    params = {"p": project, "a": analysis, "c": category}
    optional = {"e": embedding, "k": clustering, "m": mode}
    params.update({key: value for key, value in optional.items() if value})
    code = selection_code(selection, size) if len(selection) else ""
    if code:
        params["sel"] = code
    return "#" + urlencode(params)
