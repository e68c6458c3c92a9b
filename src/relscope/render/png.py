"""Image files: PNGs written atomically, and heatmaps as 8-bit palette PNGs whose indices
encode the normalized relevance and whose palette is the colour map, so :func:`recolor`
swaps the colour map without touching the index data.
"""

from __future__ import annotations

import io
import os
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO, TypeAlias

import numpy as np
import numpy.typing as npt
from PIL import Image, UnidentifiedImageError

from relscope._atomic import atomic_path
from relscope.errors import ConfigError, FormatError, PathError
from relscope.render.colormaps import ColorMap, _numpy, get_colormap, to_indices
from relscope.render.maps import Normalization, _float_array, _scaled

__all__ = [
    "PathLike",
    "heatmap_png",
    "image_png",
    "load_heatmap",
    "recolor",
    "save_heatmap",
    "save_image",
    "unit_image",
]

PathLike: TypeAlias = str | os.PathLike[str]

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PALETTE_COLOUR_TYPE = 3


# ----------------------------------------------------------------------------- files
def _write_atomically(
    path: PathLike, write: Callable[[BinaryIO], None], suffixes: tuple[str, ...] = (".png",)
) -> Path:
    target = Path(path)
    if target.suffix.lower() not in suffixes:
        raise ConfigError(f"{target}: expected a file name ending in {' or '.join(suffixes)}")
    if not target.parent.is_dir():
        raise PathError(f"{target}: directory {target.parent} does not exist")
    try:
        with atomic_path(target) as temporary, open(temporary, "xb") as handle:
            write(handle)
    except OSError as error:
        raise PathError(f"{target}: cannot write: {error.strerror or error}") from error
    return target


def save_image(path: PathLike, image: Any) -> Path:
    """Write a ``uint8`` image ``(H, W)``, ``(H, W, 3)`` or ``(H, W, 4)`` as a PNG, atomically.

    Returns
    -------
    pathlib.Path
        The path written.
    """
    array = _numpy(image)
    if array.dtype != np.uint8 or not (
        array.ndim == 2 or (array.ndim == 3 and array.shape[-1] in (3, 4))
    ):
        raise ConfigError(
            f"save_image: expected uint8 (H, W), (H, W, 3) or (H, W, 4), "
            f"found {array.dtype} of shape {array.shape}"
        )
    picture = Image.fromarray(np.ascontiguousarray(array))
    return _write_atomically(path, lambda handle: picture.save(handle, format="PNG"))


def _heatmap_indices(relevance: Any, mode: Normalization | None) -> npt.NDArray[np.uint8]:
    array = _numpy(relevance)
    if array.ndim not in (2, 3):
        raise ConfigError(
            f"heatmap: expected one relevance map (H, W) or (C, H, W), found shape {array.shape}"
        )
    if mode is None and array.dtype == np.uint8:
        if array.ndim != 2:
            raise ConfigError(f"heatmap: expected uint8 indices (H, W), found shape {array.shape}")
        return np.ascontiguousarray(array)
    maps = _float_array(array, "relevance")
    if maps.ndim == 3:
        maps = maps.sum(axis=0)
    return to_indices(_scaled(maps[None], mode, "sample")[0])


def _palette_image(indices: npt.NDArray[np.uint8], cmap: str | ColorMap) -> Image.Image:
    height, width = indices.shape
    picture = Image.frombytes("P", (width, height), np.ascontiguousarray(indices).tobytes())
    picture.putpalette(get_colormap(cmap).palette.tobytes(), rawmode="RGB")
    return picture


def heatmap_png(
    relevance: Any, cmap: str | ColorMap = "bwr", *, mode: Normalization | None = "symmetric"
) -> bytes:
    """An 8-bit palette PNG of one relevance map, as bytes (see :func:`save_heatmap`)."""
    picture = _palette_image(_heatmap_indices(relevance, mode), cmap)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", bits=8)
    return buffer.getvalue()


def save_heatmap(
    path: PathLike,
    relevance: Any,
    cmap: str | ColorMap = "bwr",
    *,
    mode: Normalization | None = "symmetric",
) -> Path:
    """Write one relevance map as an 8-bit palette PNG, atomically.

    The PNG's indices are the normalized relevance (0-255) and its palette is ``cmap``, so
    :func:`recolor` can change the colour map later without touching the indices.

    Parameters
    ----------
    path:
        Target file, ending in ``.png``.
    relevance:
        A map ``(H, W)`` or ``(C, H, W)`` (channels summed). With ``mode=None``: values
        already in [0, 1], or ``uint8`` palette indices ``(H, W)`` stored as they are.
    cmap:
        Colour-map name or specification.
    mode:
        Normalization of the map (:func:`normalize`), or ``None``.

    Returns
    -------
    pathlib.Path
        The path written.
    """
    data = heatmap_png(relevance, cmap, mode=mode)
    return _write_atomically(path, lambda handle: handle.write(data))


def load_heatmap(path: PathLike) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8]]:
    """Read a palette PNG: its ``uint8`` indices ``(H, W)`` and its palette ``(N, 3)``.

    Raises
    ------
    PathError
        If the file does not exist.
    FormatError
        If it is not a palette PNG.
    """
    target = Path(path)
    try:
        with Image.open(target) as picture:
            if picture.format != "PNG" or picture.mode != "P":
                raise FormatError(
                    target,
                    "/",
                    "an 8-bit palette PNG (mode 'P')",
                    f"{picture.format} image of mode {picture.mode!r}",
                )
            indices = np.array(picture, dtype=np.uint8)
            palette = np.array(picture.getpalette("RGB"), dtype=np.uint8).reshape(-1, 3)
    except FileNotFoundError:
        raise PathError(f"{target}: heatmap file does not exist") from None
    except (UnidentifiedImageError, OSError) as error:
        raise FormatError(target, "/", "a PNG image", type(error).__name__) from None
    return indices, palette


def _swap_palette(data: bytes, palette: bytes, source: str) -> bytes:
    """``data`` (a palette PNG) with only its PLTE chunk replaced."""
    if not data.startswith(_PNG_SIGNATURE):
        raise FormatError(source, "/", "a PNG file", "another kind of data")
    chunks = [_PNG_SIGNATURE]
    position = len(_PNG_SIGNATURE)
    replaced = False
    while position < len(data):
        header = data[position : position + 8]
        if len(header) < 8:
            raise FormatError(source, f"byte {position}", "a PNG chunk", "end of file")
        length = int.from_bytes(header[:4], "big")
        kind = header[4:]
        end = position + 12 + length
        if end > len(data):
            raise FormatError(source, f"chunk {kind!r}", f"{length} bytes", "end of file")
        if kind == b"IHDR":
            bit_depth, colour_type = data[position + 16], data[position + 17]
            if colour_type != _PALETTE_COLOUR_TYPE or bit_depth != 8:
                raise FormatError(
                    source,
                    "IHDR",
                    "an 8-bit palette PNG",
                    f"colour type {colour_type}, bit depth {bit_depth}",
                )
        if kind == b"PLTE":
            crc = zlib.crc32(kind + palette).to_bytes(4, "big")
            chunks.append(len(palette).to_bytes(4, "big") + kind + palette + crc)
            replaced = True
        else:
            chunks.append(data[position:end])
        position = end
        if kind == b"IEND":
            break
    if not replaced:
        raise FormatError(source, "PLTE", "a palette chunk", "none")
    chunks.append(data[position:])
    return b"".join(chunks)


def recolor(
    source: PathLike | bytes | Image.Image,
    cmap: str | ColorMap,
    out: PathLike | None = None,
) -> Path | bytes | Image.Image:
    """Swap the palette of a heatmap for another colour map; the index data stay untouched.

    Parameters
    ----------
    source:
        A palette PNG file (rewritten in place unless ``out`` is given), its bytes, or a
        Pillow image of mode ``P``.
    cmap:
        The new colour map.
    out:
        For a file source: where to write the result instead.

    Returns
    -------
    pathlib.Path or bytes or PIL.Image.Image
        The path written, the new PNG bytes, or a new image: like ``source``. File and
        bytes keep every chunk but the palette byte for byte, including the compressed
        indices.
    """
    colormap = get_colormap(cmap)
    palette = colormap.palette.tobytes()
    if isinstance(source, Image.Image):
        if source.mode != "P":
            raise ConfigError(
                f"recolor: expected a palette image (mode 'P'), found {source.mode!r}"
            )
        recoloured = source.copy()
        recoloured.putpalette(palette, rawmode="RGB")
        return recoloured
    if isinstance(source, bytes | bytearray):
        return _swap_palette(bytes(source), palette, "<bytes>")
    target = Path(source)
    try:
        data = target.read_bytes()
    except FileNotFoundError:
        raise PathError(f"{target}: heatmap file does not exist") from None
    result = _swap_palette(data, palette, str(target))
    return _write_atomically(target if out is None else out, lambda handle: handle.write(result))


def unit_image(data: Any) -> npt.NDArray[np.float64]:
    """Pixels in [0, 1]: as they are in [0, 1]; divided by 255 when they reach past 2 but
    stay in [0, 255] (8-bit values stored as floats, as in ViRelAy's CIFAR example); else
    min-max scaled (e.g. normalized inputs)."""
    data = np.asarray(data, dtype=np.float64)
    low, high = float(data.min()), float(data.max())
    if low >= 0.0 and high <= 1.0:
        return data
    if low >= 0.0 and 2.0 < high <= 255.0:
        return data / 255.0
    return (data - low) / (high - low) if high > low else np.zeros_like(data)


def image_png(data: Any) -> bytes:
    """A ``C x H x W`` input image (1 or 3 channels; see :func:`unit_image`) as PNG."""
    pixels = np.clip(np.rint(unit_image(data) * 255.0), 0, 255).astype(np.uint8)
    image = pixels[0] if pixels.shape[0] == 1 else np.moveaxis(pixels[:3], 0, -1)
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image)).save(buffer, format="PNG")
    return buffer.getvalue()
