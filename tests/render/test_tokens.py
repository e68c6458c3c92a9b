"""Token heatmaps: colours against a hand computation and heatmap(), the contrast rule, the
HTML read back by a parser, the PNG's pixels per token box, wrapping, tokenizer pieces,
atomic files and every error message."""

import html
import io
import itertools
import re
from html.parser import HTMLParser

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

from relscope.errors import ConfigError, PathError
from relscope.render import (
    clean_tokens,
    get_colormap,
    heatmap,
    layout_tokens,
    save_token_heatmap,
    text_colors,
    token_colors,
    token_heatmap_html,
    token_heatmap_png,
)

TOKENS = ["The", " quick", " brown", " fox", "\n", "jumps", " over", " <b>&amp;", " dog"]
R = np.array([-2.0, -1.0, -0.5, 0.0, 0.25, 0.5, 1.0, 1.5, 2.0])


def raises(error, text):
    """``pytest.raises`` for a message that contains ``text`` literally."""
    return pytest.raises(error, match=re.escape(text))


def palette_lookup(cmap, unit):
    """Colours of values in [0, 1], computed here: the palette entry at round(255 v)."""
    indices = np.floor(np.clip(unit, 0.0, 1.0) * 255 + 0.5).astype(int)
    return get_colormap(cmap).palette[indices]


def contrast(a, b):
    """WCAG 2 contrast ratio of two sRGB colours (0-255), written out per channel."""

    def luminance(rgb):
        channels = []
        for value in rgb:
            c = value / 255
            channels.append(c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4)
        return 0.2126 * channels[0] + 0.7152 * channels[1] + 0.0722 * channels[2]

    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


class Spans(HTMLParser):
    """Every ``<span>`` of the HTML: its attributes and its text (entities decoded)."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.spans = []
        self.tags = []
        self._open = None

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag == "span":
            self._open = {"attrs": dict(attrs), "text": ""}

    def handle_endtag(self, tag):
        if tag == "span" and self._open is not None:
            self.spans.append(self._open)
            self._open = None

    def handle_data(self, data):
        if self._open is not None:
            self._open["text"] += data


def parse(text):
    parser = Spans()
    parser.feed(text)
    parser.close()
    return parser


def style_colours(style):
    found = dict(re.findall(r"(background-color|(?<!-)color):(#[0-9a-f]{6})", style))
    return tuple(
        tuple(int(found[key][i : i + 2], 16) for i in (1, 3, 5))
        for key in ("background-color", "color")
    )


# ----------------------------------------------------------------------------- colours
@pytest.mark.parametrize("cmap", ["bwr", "gray", "000,80:f00,ff0"])
def test_colors_are_the_colormap_of_symmetric_values(cmap):
    unit = 0.5 + 0.5 * R / 2.0  # max |R| = 2
    expected = palette_lookup(cmap, unit)
    colours = token_colors(R, cmap=cmap)
    assert colours.dtype == np.uint8
    assert colours.shape == (len(R), 3)
    np.testing.assert_array_equal(colours, expected)


def test_colors_of_other_normalizations():
    r = np.array([-1.0, 0.0, 3.0, 1.0])
    np.testing.assert_array_equal(
        token_colors(r, normalization="absolute"), palette_lookup("bwr", [1 / 3, 0, 1, 1 / 3])
    )
    np.testing.assert_array_equal(
        token_colors(r, normalization="minmax", cmap="gray"),
        palette_lookup("gray", [0.0, 0.25, 1.0, 0.5]),
    )
    unit = np.array([0.0, 0.2, 1.0])
    np.testing.assert_array_equal(
        token_colors(unit, normalization=None), palette_lookup("bwr", unit)
    )


@pytest.mark.parametrize("mode", ["symmetric", "absolute", "minmax"])
def test_colors_equal_heatmap_of_the_same_values(mode):
    rng = np.random.default_rng(7)
    r = rng.normal(size=23)
    expected = heatmap(r[None, :], cmap="coolio", mode=mode)[0]
    np.testing.assert_array_equal(token_colors(r, cmap="coolio", normalization=mode), expected)


def test_colors_accept_torch_tensors():
    tensor = torch.tensor(R, dtype=torch.bfloat16)
    np.testing.assert_array_equal(token_colors(tensor), token_colors(tensor.float().numpy()))
    np.testing.assert_array_equal(token_colors(torch.tensor(R)), token_colors(R))


def test_all_zero_relevance_is_the_middle_colour():
    np.testing.assert_array_equal(token_colors(np.zeros(3)), [[255, 255, 255]] * 3)


def test_text_colour_is_the_higher_contrast_of_black_and_white():
    rng = np.random.default_rng(3)
    backgrounds = rng.integers(0, 256, size=(300, 3))
    inks = text_colors(backgrounds)
    black, white = (0, 0, 0), (255, 255, 255)
    for background, ink in zip(backgrounds.tolist(), inks.tolist(), strict=True):
        assert ink in (list(black), list(white))
        other = white if ink == list(black) else black
        assert contrast(background, ink) >= contrast(background, other)
    # Backgrounds: white, black, blue, yellow, dark gray.
    named = text_colors([white, black, (0, 0, 255), (255, 255, 0), (40, 40, 40)]).tolist()
    assert named == [list(black), list(white), list(white), list(black), list(white)]


# ----------------------------------------------------------------------------- HTML
def test_html_has_one_coloured_span_per_token():
    text = token_heatmap_html(TOKENS, R, cmap="seismic")
    spans = parse(text).spans
    assert [span["text"] for span in spans] == TOKENS
    colours = token_colors(R, cmap="seismic")
    for span, value, colour in zip(spans, R, colours, strict=True):
        background, ink = style_colours(span["attrs"]["style"])
        assert background == tuple(colour.tolist())
        assert ink == tuple(text_colors(colour).tolist())
        assert float(span["attrs"]["title"]) == pytest.approx(value, rel=1e-6)


def test_html_escapes_tokens_and_title():
    tokens = ["<script>alert(1)</script>", " a & b", ' "q" ', "'"]
    text = token_heatmap_html(tokens, [1.0, 2.0, 3.0, 4.0], title="<i>R & D</i>")
    assert "<script" not in text
    assert "<i>" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert " a &amp; b" in text
    assert "&lt;i&gt;R &amp; D&lt;/i&gt;" in text
    assert [span["text"] for span in parse(text).spans] == tokens


def test_html_is_self_contained_and_keeps_whitespace():
    text = token_heatmap_html(["a", "  b", "\n", "\tc"], [1.0, 0.0, -1.0, 0.5], page=True)
    parser = parse(text)
    assert set(parser.tags) <= {"html", "head", "meta", "title", "body", "div", "span"}
    for forbidden in ("<script", "<link", "<style", "src=", "href=", "url(", "class="):
        assert forbidden not in text
    assert text.startswith("<!DOCTYPE html>")
    assert "white-space:pre-wrap" in text
    assert [span["text"] for span in parser.spans] == ["a", "  b", "\n", "\tc"]


def test_html_fragment_is_one_div():
    text = token_heatmap_html(["x"], [1.0])
    assert text.startswith("<div") and text.endswith("</div>")
    assert "<html" not in text


def test_empty_token_still_shows_its_colour():
    spans = parse(token_heatmap_html(["a", "", "b"], [0.0, 1.0, 0.0])).spans
    assert spans[1]["text"] == ""
    assert "padding-left" in spans[1]["attrs"]["style"]
    assert "padding-left" not in spans[0]["attrs"]["style"]


# ----------------------------------------------------------------------------- PNG
def decode(data):
    picture = Image.open(io.BytesIO(data))
    assert picture.format == "PNG"
    return np.array(picture.convert("RGB"))


def test_png_boxes_have_their_token_colour():
    data = token_heatmap_png(TOKENS, R, width=300, font_size=16, padding=3)
    pixels = decode(data)
    size, boxes = layout_tokens(TOKENS, width=300, font_size=16, padding=3)
    assert pixels.shape == (size[1], size[0], 3)
    colours = token_colors(R)
    inks = text_colors(colours)
    assert {box.index for box in boxes} == set(range(len(TOKENS)))
    covered = np.zeros(pixels.shape[:2], dtype=bool)
    for box in boxes:
        colour = colours[box.index].tolist()
        # The middle of the box's top padding row: inside the box, above any glyph.
        middle = pixels[box.top + 1, (box.left + box.right - 1) // 2]
        assert middle.tolist() == colour, box
        region = pixels[box.top : box.bottom, box.left : box.right].reshape(-1, 3)
        values, counts = np.unique(region, axis=0, return_counts=True)
        assert values[counts.argmax()].tolist() == colour, box
        if box.text.strip():
            # The text is drawn in the token's readable colour.
            assert (region == inks[box.index]).all(axis=1).any(), box
        covered[box.top : box.bottom, box.left : box.right] = True
    # Everything outside the boxes is the background.
    assert (pixels[~covered] == 255).all()


def test_png_background_and_font_size():
    small = decode(token_heatmap_png(["a", "b"], [1.0, -1.0], font_size=10, background=(0, 9, 0)))
    large = decode(token_heatmap_png(["a", "b"], [1.0, -1.0], font_size=30))
    assert small[0, 0].tolist() == [0, 9, 0]
    assert large.shape[0] > small.shape[0]
    assert small.shape[1] == large.shape[1] == 640


def test_narrow_width_wraps_into_more_lines():
    words = [" word"] * 30
    wide_size, wide = layout_tokens(words, width=2000)
    narrow_size, narrow = layout_tokens(words, width=120)
    assert len({box.top for box in wide}) == 1
    assert len({box.top for box in narrow}) > 5
    assert narrow_size[1] > wide_size[1]
    for box in narrow:
        assert 8 <= box.left < box.right <= 120 - 8
    # A wrapped token loses its leading blank; every token is still drawn.
    starts = [box for box in narrow if box.left == 8]
    assert all(box.text == "word" for box in starts[1:])
    assert sorted({box.index for box in narrow}) == list(range(30))
    pixels = decode(token_heatmap_png(words, np.linspace(-1, 1, 30), width=120))
    assert pixels.shape == (narrow_size[1], 120, 3)


def test_boxes_follow_in_reading_order_without_overlap():
    _, boxes = layout_tokens(TOKENS * 4, width=200)
    order = [(box.top, box.left) for box in boxes]
    assert order == sorted(order)
    for first, second in itertools.pairwise(boxes):
        if first.top == second.top:
            assert first.right <= second.left


def test_newline_token_starts_a_new_line():
    _, boxes = layout_tokens(["a", "\n", "b", "c\nd"], width=600)
    rows = {box.text or "<newline>": box.top for box in boxes}
    assert rows["a"] == rows["<newline>"] < rows["b"] == rows["c"] < rows["d"]
    assert [box.index for box in boxes] == [0, 1, 2, 3, 3]


def test_token_wider_than_a_line_is_split_by_characters():
    _, boxes = layout_tokens(["x" * 200], width=100, margin=5)
    assert len(boxes) > 1
    assert "".join(box.text for box in boxes) == "x" * 200
    assert all(box.right <= 95 for box in boxes)


def test_save_token_heatmap_writes_png_and_html(tmp_path):
    png = save_token_heatmap(tmp_path / "t.png", TOKENS, R, width=300)
    assert png.read_bytes() == token_heatmap_png(TOKENS, R, width=300)
    page = save_token_heatmap(tmp_path / "t.html", TOKENS, R, title="x")
    assert page.read_text(encoding="utf-8") == token_heatmap_html(TOKENS, R, title="x", page=True)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["t.html", "t.png"]
    with raises(ConfigError, "expected a file name ending in .png or .html"):
        save_token_heatmap(tmp_path / "t.txt", TOKENS, R)
    with raises(PathError, "does not exist"):
        save_token_heatmap(tmp_path / "missing" / "t.png", TOKENS, R)


# ----------------------------------------------------------------------------- tokenizers
def test_clean_gpt2_pieces():
    pieces = ["Hello", "Ġworld", ",", "ĠĠ", "Ċ", "ĊĊ", "ĉx", "<|endoftext|>"]
    assert clean_tokens(pieces) == ["Hello", " world", ",", "  ", "\n", "\n\n", "\tx", pieces[-1]]


def test_clean_byte_level_decodes_utf8_across_pieces():
    # 'é' is bytes C3 A9, shown as 'Ã©'; '日' (E6 97 A5) split over two pieces shows at the
    # piece that completes it.
    assert clean_tokens(["ĠcafÃ©"], "byte_level") == [" café"]
    assert clean_tokens(["æĹ", "¥", "Ġok"], "byte_level") == ["", "日", " ok"]
    assert clean_tokens(["æĹ"], "byte_level") == ["\ufffd"]


def test_clean_sentencepiece_pieces():
    pieces = ["<s>", "▁The", "▁cat", "s", "<0x0A>", "▁▁x", "<0xE2>", "<0x82>", "<0xAC>", "</s>"]
    assert clean_tokens(pieces) == ["<s>", " The", " cat", "s", "\n", "  x", "", "", "€", "</s>"]


def test_clean_wordpiece_pieces():
    pieces = ["[CLS]", "un", "##believ", "##able", "!", "[SEP]"]
    assert clean_tokens(pieces) == ["[CLS]", " un", "believ", "able", " !", " [SEP]"]
    assert "".join(clean_tokens(pieces)) == "[CLS] unbelievable ! [SEP]"


def test_clean_plain_and_explicit_schemes():
    assert clean_tokens(["a", "b"]) == ["a", "b"]
    assert clean_tokens(["a", "Ġb"], "plain") == ["a", "Ġb"]
    assert clean_tokens(["a", "b"], "wordpiece") == ["a", " b"]
    # Markers of another scheme pass through untouched.
    assert clean_tokens(["Ġa", "##b"], "byte_level") == [" a", "##b"]
    assert clean_tokens(["[MASK]", "<pad>", "<unk>"], "sentencepiece") == [
        "[MASK]",
        "<pad>",
        "<unk>",
    ]


def test_clean_keeps_one_string_per_piece():
    pieces = ["æĹ", "¥", "Ġ", "Ċ", "x"]
    assert len(clean_tokens(pieces)) == len(pieces)


# ----------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: token_heatmap_html(["a", "b"], [1.0]), "found 2 tokens and 1 values"),
        (lambda: token_heatmap_png(["a"], [1.0, 2.0]), "found 1 tokens and 2 values"),
        (lambda: token_colors(np.ones((2, 3))), "one value per token (shape (n,)), found shape"),
        (lambda: token_heatmap_html(["a"], np.float64(1.0)), "found shape ()"),
        (lambda: token_heatmap_html([], []), "tokens: expected at least one token, found none"),
        (lambda: token_colors([]), "relevance: expected at least one value, found none"),
        (lambda: token_colors([1.0], cmap="nope"), "unknown colour map 'nope'"),
        (lambda: token_heatmap_png(["a"], [1.0], cmap="12:"), "colour map spec, column"),
        (lambda: token_colors([0.0, 1.0, np.nan]), "found nan at token 2"),
        (
            lambda: token_heatmap_html(["a", "b"], [np.inf, 0.0]),
            "found inf at token 0 ('a')",
        ),
        (lambda: token_colors(["a"]), "relevance: expected real numbers"),
        (lambda: token_heatmap_html("abc", [1.0, 2.0, 3.0]), "tokens: expected a sequence"),
        (lambda: token_heatmap_html(["a", 3], [1.0, 2.0]), "tokens: token 1: expected a string"),
        (lambda: token_colors([1.0], normalization="max"), "normalization: expected one of"),
        (lambda: token_colors([2.0], normalization=None), "expected values in [0, 1]"),
        (lambda: token_heatmap_html(["a"], [1.0], title=3), "title: expected a string"),
        (lambda: token_heatmap_png(["a"], [1.0], width=10), "width: expected at least"),
        (lambda: token_heatmap_png(["a"], [1.0], font_size=0), "font_size: expected a positive"),
        (lambda: token_heatmap_png(["a"], [1.0], padding=-1), "padding: expected an integer >= 0"),
        (lambda: token_heatmap_png(["a"], [1.0], background=300), "background: expected"),
        (lambda: token_heatmap_png(["a"], [1.0], font="/no/font.ttf"), "font: cannot load"),
        (lambda: clean_tokens(["a"], "bpe"), "clean_tokens: scheme: expected one of"),
        (lambda: text_colors([[1, 2]]), "text_colors: expected RGB integers"),
    ],
)
def test_errors_are_one_line_config_errors(call, message):
    with raises(ConfigError, message) as caught:
        call()
    assert "\n" not in str(caught.value)


def test_non_finite_in_a_torch_tensor_names_the_token():
    with raises(ConfigError, "found nan at token 1"):
        token_colors(torch.tensor([0.0, float("nan")]))


# ----------------------------------------------------------------------------- property
@settings(max_examples=60, deadline=None)
@given(
    data=st.data(),
    relevance=hnp.arrays(
        np.float64,
        st.integers(1, 20),
        elements=st.floats(allow_nan=False, allow_infinity=False),
    ),
)
def test_any_finite_relevance_gives_colours_and_escaped_html(data, relevance):
    tokens = data.draw(
        st.lists(st.text(max_size=6), min_size=len(relevance), max_size=len(relevance))
    )
    colours = token_colors(relevance)
    assert colours.shape == (len(relevance), 3)
    assert colours.dtype == np.uint8
    text = token_heatmap_html(tokens, relevance)
    for token in tokens:
        assert html.escape(token, quote=True) in text
    assert len(re.findall("<span ", text)) == len(tokens)
