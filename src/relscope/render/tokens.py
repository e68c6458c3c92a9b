"""Token heatmaps: text coloured by relevance, one value per token, as HTML or PNG.

Colours come from the same colour maps and normalization as :func:`~.styles.heatmap`;
:func:`clean_tokens` turns tokenizer pieces (byte-level BPE, SentencePiece, WordPiece)
into the text they stand for, one display string per piece.

>>> pieces = ["Hello", "Ġworld", "!"]
>>> clean_tokens(pieces)
['Hello', ' world', '!']
>>> token_colors([-1.0, 0.0, 1.0]).tolist()
[[0, 0, 255], [255, 255, 255], [255, 0, 0]]
>>> html = token_heatmap_html(clean_tokens(pieces), [-1.0, 0.0, 1.0])
>>> '<span style="background-color:#ffffff;color:#000000" title="0">' in html
True
"""

from __future__ import annotations

import codecs
import html
import io
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, NamedTuple, TypeAlias

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw, ImageFont

from relscope.errors import ConfigError
from relscope.render.colormaps import ColorMap, _numpy, get_colormap
from relscope.render.maps import NORMALIZATIONS, Normalization, _choice, _scaled
from relscope.render.png import PathLike, _write_atomically

__all__ = [
    "TOKEN_SCHEMES",
    "TokenBox",
    "TokenScheme",
    "clean_tokens",
    "layout_tokens",
    "save_token_heatmap",
    "text_colors",
    "token_colors",
    "token_heatmap_html",
    "token_heatmap_png",
]

TokenScheme: TypeAlias = Literal["auto", "byte_level", "sentencepiece", "wordpiece", "plain"]
TOKEN_SCHEMES: tuple[str, ...] = ("auto", "byte_level", "sentencepiece", "wordpiece", "plain")

Font: TypeAlias = "str | os.PathLike[str] | ImageFont.FreeTypeFont | ImageFont.ImageFont | None"

_DARK = np.array([0, 0, 0], dtype=np.uint8)
_LIGHT = np.array([255, 255, 255], dtype=np.uint8)


# ----------------------------------------------------------------------------- inputs
def _token_list(tokens: Any) -> list[str]:
    if isinstance(tokens, str | bytes) or not isinstance(tokens, Sequence):
        raise ConfigError(
            f"tokens: expected a sequence of strings (one per token), found {type(tokens).__name__}"
        )
    for index, token in enumerate(tokens):
        if not isinstance(token, str):
            raise ConfigError(
                f"tokens: token {index}: expected a string, found {type(token).__name__}"
            )
    if not tokens:
        raise ConfigError("tokens: expected at least one token, found none")
    return [str(token) for token in tokens]


def _relevance_vector(
    relevance: Any, tokens: Sequence[str] | None = None
) -> npt.NDArray[np.float64]:
    """Relevance as a finite 1-D ``float64`` array, one value per token."""
    array = _numpy(relevance)
    if array.dtype.kind not in "biuf":
        raise ConfigError(f"relevance: expected real numbers, found dtype {array.dtype}")
    if array.ndim != 1:
        raise ConfigError(
            f"relevance: expected one value per token (shape (n,)), found shape {array.shape}"
        )
    if array.size == 0:
        raise ConfigError("relevance: expected at least one value, found none")
    values = array.astype(np.float64)
    bad = np.flatnonzero(~np.isfinite(values))
    if len(bad):
        index = int(bad[0])
        where = f"token {index}" if tokens is None else f"token {index} ({tokens[index]!r})"
        raise ConfigError(f"relevance: expected finite numbers, found {values[index]} at {where}")
    if tokens is not None and len(tokens) != len(values):
        raise ConfigError(
            f"tokens and relevance: expected one value per token, "
            f"found {len(tokens)} tokens and {len(values)} values"
        )
    return values


def _checked(
    tokens: Any, relevance: Any, cmap: str | ColorMap, normalization: Normalization | None
) -> tuple[list[str], npt.NDArray[np.float64], npt.NDArray[np.uint8]]:
    colormap = get_colormap(cmap)
    texts = _token_list(tokens)
    values = _relevance_vector(relevance, texts)
    return texts, values, token_colors(values, cmap=colormap, normalization=normalization)


# ----------------------------------------------------------------------------- colours
def token_colors(
    relevance: Any,
    *,
    cmap: str | ColorMap = "bwr",
    normalization: Normalization | None = "symmetric",
) -> npt.NDArray[np.uint8]:
    """One RGB colour per token: ``uint8`` of shape ``(n, 3)``.

    The colours are those :func:`~.styles.heatmap` gives the same values: ``relevance``
    (1-D, finite; numpy or torch) normalized over the whole text (:func:`~.maps.normalize`;
    ``None``: values already in [0, 1]) and looked up in ``cmap``.
    """
    colormap = get_colormap(cmap)
    if normalization is not None:
        _choice("token heatmap: normalization", normalization, NORMALIZATIONS)
    values = _relevance_vector(relevance)
    return colormap(_scaled(values[None], normalization, "sample")[0])


def _luminance(colors: npt.NDArray[np.uint8]) -> npt.NDArray[np.float64]:
    """WCAG 2 relative luminance of sRGB colours ``(..., 3)``."""
    unit = colors.astype(np.float64) / 255.0
    linear = np.where(unit <= 0.04045, unit / 12.92, ((unit + 0.055) / 1.055) ** 2.4)
    return linear @ np.array([0.2126, 0.7152, 0.0722])


def text_colors(backgrounds: Any) -> npt.NDArray[np.uint8]:
    """Readable text colours on ``backgrounds`` ``(..., 3)``: black or white, whichever
    has the higher WCAG contrast ratio (black on ties).

    Examples
    --------
    >>> text_colors([[255, 255, 255], [0, 0, 255], [255, 0, 0]]).tolist()
    [[0, 0, 0], [255, 255, 255], [0, 0, 0]]
    """
    colors = np.asarray(backgrounds)
    if colors.shape[-1:] != (3,) or colors.dtype.kind not in "iu":
        raise ConfigError(
            f"text_colors: expected RGB integers (..., 3), found {colors.dtype} of shape "
            f"{colors.shape}"
        )
    luminance = _luminance(colors)
    # Contrast with black (L + .05) / .05 >= contrast with white 1.05 / (L + .05).
    dark = (luminance + 0.05) ** 2 >= 0.05 * 1.05
    return np.where(dark[..., None], _DARK, _LIGHT)


def _hex(color: npt.NDArray[np.uint8]) -> str:
    return "#" + "".join(f"{int(value):02x}" for value in color)


# ----------------------------------------------------------------------------- HTML
def token_heatmap_html(
    tokens: Sequence[str],
    relevance: Any,
    *,
    cmap: str | ColorMap = "bwr",
    normalization: Normalization | None = "symmetric",
    title: str | None = None,
    page: bool = False,
) -> str:
    """Text coloured by relevance as HTML: one ``<span>`` per token.

    Parameters
    ----------
    tokens:
        The display text of each token (see :func:`clean_tokens`), HTML-escaped here.
    relevance:
        One finite value per token (1-D; numpy or torch).
    cmap, normalization:
        As for :func:`token_colors`.
    title:
        An optional heading (escaped).
    page:
        Return a whole HTML document instead of one ``<div>``.

    Returns
    -------
    str
        Inline styles only (no scripts, classes or external resources). Each span has the
        token's colour as background, black or white text (:func:`text_colors`) and its
        relevance in a ``title`` attribute (a tooltip); whitespace and newlines are kept.
    """
    texts, values, colors = _checked(tokens, relevance, cmap, normalization)
    if title is not None and not isinstance(title, str):
        raise ConfigError(f"title: expected a string or None, found {type(title).__name__}")
    inks = text_colors(colors)
    spans = []
    for text, value, color, ink in zip(texts, values, colors, inks, strict=True):
        # An empty token still gets a sliver of colour, so its relevance stays visible.
        extra = ";padding-left:0.25em" if not text else ""
        spans.append(
            f'<span style="background-color:{_hex(color)};color:{_hex(ink)}{extra}" '
            f'title="{value:.6g}">{html.escape(text, quote=True)}</span>'
        )
    heading = (
        ""
        if title is None
        else f'<div style="font-weight:bold;margin-bottom:0.5em">{html.escape(title)}</div>'
    )
    body = (
        '<div style="font-family:sans-serif;line-height:1.6;background-color:#ffffff;'
        'color:#000000;padding:0.5em">'
        f"{heading}"
        '<div style="white-space:pre-wrap;overflow-wrap:anywhere">'
        f"{''.join(spans)}</div></div>"
    )
    if not page:
        return body
    name = html.escape(title) if title is not None else "Token relevance"
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8">'
        f"<title>{name}</title></head>\n<body>{body}</body></html>\n"
    )


# ----------------------------------------------------------------------------- PNG layout
class TokenBox(NamedTuple):
    """One coloured box of a token heatmap PNG: part of token ``index`` (a token spans
    several boxes where it holds a newline or wraps). ``right``/``bottom`` are exclusive."""

    index: int
    text: str
    left: int
    top: int
    right: int
    bottom: int


def _font(font: Font, font_size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    if isinstance(font_size, bool) or not isinstance(font_size, int) or font_size < 1:
        raise ConfigError(f"font_size: expected a positive integer, found {font_size!r}")
    if font is None:
        return ImageFont.load_default(size=font_size)
    if isinstance(font, ImageFont.FreeTypeFont | ImageFont.ImageFont):
        return font
    try:
        return ImageFont.truetype(os.fspath(font), font_size)
    except OSError as error:
        raise ConfigError(f"font: cannot load {os.fspath(font)!r}: {error}") from None


def _pixels(what: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{what}: expected an integer >= {minimum}, found {value!r}")
    return value


def _line_height(font: ImageFont.FreeTypeFont | ImageFont.ImageFont) -> int:
    if isinstance(font, ImageFont.FreeTypeFont):
        ascent, descent = font.getmetrics()
        return int(ascent + descent)
    box = font.getbbox("Ag|")
    return int(box[3])


def _segments(text: str) -> list[str]:
    """A token's lines (``\\r\\n``, ``\\r`` and ``\\n`` end one), tabs as 4 blanks."""
    return text.replace("\r\n", "\n").replace("\r", "\n").expandtabs(4).split("\n")


def layout_tokens(
    tokens: Sequence[str],
    *,
    width: int = 640,
    font_size: int = 16,
    font: Font = None,
    padding: int = 3,
    margin: int = 8,
) -> tuple[tuple[int, int], list[TokenBox]]:
    """Where :func:`token_heatmap_png` puts each token: the image size and the boxes.

    Tokens follow each other on a line; a newline in a token starts a new line, and a token
    that does not fit in ``width - 2 * margin`` pixels moves to the next line (without its
    leading blanks), or is split by characters if it is wider than a whole line. Empty
    tokens get a narrow box. Tabs are 4 blanks.

    Returns
    -------
    ((width, height), boxes)
        The image size in pixels and the boxes, in reading order.
    """
    texts = _token_list(tokens)
    face = _font(font, font_size)
    width = _pixels("width", width, 1)
    padding = _pixels("padding", padding, 0)
    margin = _pixels("margin", margin, 0)
    right_edge = width - margin
    if right_edge - margin < font_size:
        raise ConfigError(
            f"width: expected at least 2 * margin + font_size = {2 * margin + font_size} "
            f"pixels, found {width}"
        )
    row_height = _line_height(face) + 2 * padding
    sliver = max(2, font_size // 4)
    boxes: list[TokenBox] = []
    line = 0
    x = float(margin)

    def top() -> int:
        return margin + line * (row_height + padding)

    def place(index: int, text: str, advance: float) -> None:
        nonlocal x
        left = round(x)
        x += advance
        boxes.append(
            TokenBox(index, text, left, top(), max(round(x), left + 1), top() + row_height)
        )

    def new_line() -> None:
        nonlocal x, line
        line += 1
        x = float(margin)

    for index, token in enumerate(texts):
        segments = _segments(token)
        for number, segment in enumerate(segments):
            if number:
                new_line()
            if not segment:
                # Only a token that shows nothing at all gets a sliver of colour.
                if all(not part for part in segments) and number == 0:
                    if x > margin and x + sliver > right_edge:
                        new_line()
                    place(index, "", sliver)
                continue
            rest = segment
            while rest:
                advance = face.getlength(rest)
                if x + advance <= right_edge:
                    place(index, rest, advance)
                    break
                if x > margin:
                    new_line()
                    rest = rest.lstrip(" ")
                    if not rest:  # blanks that wrapped: a sliver at the line start
                        place(index, "", sliver)
                    continue
                # Wider than a whole line: as many characters as fit (at least one).
                count = 1
                while count < len(rest) and face.getlength(rest[: count + 1]) <= right_edge - x:
                    count += 1
                place(index, rest[:count], face.getlength(rest[:count]))
                rest = rest[count:]
                if rest:
                    new_line()
    height = margin + (line + 1) * row_height + line * padding + margin
    return (width, height), boxes


def _background(color: Any) -> tuple[int, int, int]:
    array = np.array(color).reshape(-1)
    if array.size == 1:
        array = np.repeat(array, 3)
    if array.size != 3 or array.dtype.kind not in "iu" or array.min() < 0 or array.max() > 255:
        raise ConfigError(
            f"background: expected an integer 0-255 or an RGB triple of them, found {color!r}"
        )
    return (int(array[0]), int(array[1]), int(array[2]))


def token_heatmap_png(
    tokens: Sequence[str],
    relevance: Any,
    *,
    cmap: str | ColorMap = "bwr",
    normalization: Normalization | None = "symmetric",
    width: int = 640,
    font_size: int = 16,
    font: Font = None,
    padding: int = 3,
    margin: int = 8,
    background: int | Sequence[int] = 255,
) -> bytes:
    """Text coloured by relevance as an RGB PNG (bytes): each token drawn on a box of its
    colour, in black or white (:func:`text_colors`), laid out by :func:`layout_tokens`.

    ``font`` is Pillow's built-in font by default (Latin script; pass a TrueType file or
    font for others); ``background`` fills the margins and the gaps between lines.
    """
    texts, _, colors = _checked(tokens, relevance, cmap, normalization)
    fill = _background(background)
    face = _font(font, font_size)
    size, boxes = layout_tokens(
        texts, width=width, font_size=font_size, font=face, padding=padding, margin=margin
    )
    inks = text_colors(colors)
    picture = Image.new("RGB", size, fill)
    draw = ImageDraw.Draw(picture)
    for box in boxes:
        colour = tuple(int(value) for value in colors[box.index])
        draw.rectangle((box.left, box.top, box.right - 1, box.bottom - 1), fill=colour)
    for box in boxes:
        if box.text.strip():
            ink = tuple(int(value) for value in inks[box.index])
            draw.text((box.left, box.top + padding), box.text, font=face, fill=ink)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


def save_token_heatmap(
    path: PathLike, tokens: Sequence[str], relevance: Any, **options: Any
) -> Path:
    """Write a token heatmap atomically: a PNG (:func:`token_heatmap_png`) for ``.png``, an
    HTML page (:func:`token_heatmap_html` with ``page=True``) for ``.html``; ``options``
    go to that function. Returns the path written."""
    suffix = Path(path).suffix.lower()
    if suffix == ".png":
        data = token_heatmap_png(tokens, relevance, **options)
    elif suffix in (".html", ".htm"):
        options.setdefault("page", True)
        data = token_heatmap_html(tokens, relevance, **options).encode("utf-8")
    else:
        raise ConfigError(f"{path}: expected a file name ending in .png or .html")
    return _write_atomically(path, lambda handle: handle.write(data), (".png", ".html", ".htm"))


# ----------------------------------------------------------------------------- tokenizers
def _byte_alphabet() -> dict[str, int]:
    """Byte-level BPE's stand-ins: printable Latin-1 bytes are themselves, every other
    byte is the next free code point from U+0100 on (so the blank 0x20 is ``Ġ``)."""
    printable = [*range(0x21, 0x7F), *range(0xA1, 0xAD), *range(0xAE, 0x100)]
    alphabet = {chr(byte): byte for byte in printable}
    spare = 0x100
    for byte in range(256):
        if byte not in alphabet.values():
            alphabet[chr(spare)] = byte
            spare += 1
    return alphabet


_BYTE_OF = _byte_alphabet()
_SPECIAL = re.compile(r"\[[A-Za-z_]+\]|<\|[^<>|]*\|>|</?[A-Za-z_][A-Za-z0-9_]*>")
_BYTE_PIECE = re.compile(r"<0x([0-9A-Fa-f]{2})>")
_SENTENCEPIECE_BLANK = "\u2581"


def _scheme_of(tokens: Sequence[str]) -> str:
    if any(_SENTENCEPIECE_BLANK in token for token in tokens):
        return "sentencepiece"
    if any("Ġ" in token or "Ċ" in token for token in tokens):
        return "byte_level"
    if any(token.startswith("##") and len(token) > 2 for token in tokens):
        return "wordpiece"
    return "plain"


def _decode_bytes(tokens: Sequence[str], to_bytes: Any) -> list[str]:
    """Decode pieces of UTF-8 bytes: a character split over pieces shows at the piece that
    completes it; bytes that never form one become U+FFFD."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    shown: list[str] = []
    for token in tokens:
        if _SPECIAL.fullmatch(token):
            if shown:
                shown[-1] += decoder.decode(b"", final=True)
            decoder.reset()
            shown.append(token)
        else:
            shown.append(decoder.decode(to_bytes(token)))
    if shown:
        shown[-1] += decoder.decode(b"", final=True)
    return shown


def _byte_level_bytes(token: str) -> bytes:
    # A character outside the alphabet (not from a byte-level vocabulary) stands for itself.
    return b"".join(
        bytes([_BYTE_OF[char]]) if char in _BYTE_OF else char.encode("utf-8") for char in token
    )


def _sentencepiece_bytes(token: str) -> bytes:
    match = _BYTE_PIECE.fullmatch(token)
    if match:
        return bytes([int(match.group(1), 16)])
    return token.replace(_SENTENCEPIECE_BLANK, " ").encode("utf-8")


def clean_tokens(tokens: Sequence[str], scheme: TokenScheme = "auto") -> list[str]:
    """The display text of tokenizer pieces, one string per piece (so relevance stays
    aligned); data only, no tokenizer needed.

    Parameters
    ----------
    tokens:
        Pieces as a tokenizer's vocabulary spells them.
    scheme:
        ``"byte_level"`` (GPT-2, Llama 3: ``Ġ`` is a blank, ``Ċ`` a newline, other bytes
        decoded as UTF-8), ``"sentencepiece"`` (Llama 2, T5: ``▁`` is a blank, ``<0x0A>``
        a byte), ``"wordpiece"`` (BERT: ``##x`` continues the previous word, other pieces
        start a new word after a blank), ``"plain"`` (as they are), or ``"auto"``: the first
        whose marker appears (``▁``; ``Ġ`` or ``Ċ``; ``##x``), else plain. Special tokens
        (``[CLS]``, ``<s>``, ``<|endoftext|>``) are kept as they are.

    Examples
    --------
    >>> clean_tokens(["<s>", "▁Hello", "▁world", "<0x0A>"])
    ['<s>', ' Hello', ' world', '\\n']
    >>> clean_tokens(["[CLS]", "play", "##ing", "chess", "[SEP]"])
    ['[CLS]', ' play', 'ing', ' chess', ' [SEP]']
    >>> clean_tokens(["caf", "Ã©", "Ċ"], "byte_level")
    ['caf', 'é', '\\n']
    """
    texts = _token_list(tokens)
    _choice("clean_tokens: scheme", scheme, TOKEN_SCHEMES)
    kind = _scheme_of(texts) if scheme == "auto" else scheme
    if kind == "byte_level":
        return _decode_bytes(texts, _byte_level_bytes)
    if kind == "sentencepiece":
        return _decode_bytes(texts, _sentencepiece_bytes)
    if kind == "wordpiece":
        return [
            token[2:]
            if token.startswith("##") and len(token) > 2
            else (token if index == 0 else " " + token)
            for index, token in enumerate(texts)
        ]
    return texts
