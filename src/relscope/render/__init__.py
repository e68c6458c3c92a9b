"""Rendering without PyTorch: colour maps, heatmap images, visualization styles and palette
PNGs (NumPy and Pillow only; torch tensors are accepted without importing torch).

>>> import numpy as np
>>> heatmap(np.array([[[-1.0, 1.0]]]), cmap="bwr")[0, 0].tolist()
[[0, 0, 255], [255, 0, 0]]
"""

from relscope.render.colormaps import (
    COLORMAPS,
    ColorMap,
    ColorMapSpecError,
    get_colormap,
    list_colormaps,
    register_colormap,
)
from relscope.render.image import (
    STYLES,
    blend,
    get_style,
    graymap,
    grid,
    heatmap,
    heatmap_png,
    list_styles,
    load_heatmap,
    normalize,
    overlay,
    recolor,
    register_style,
    save_heatmap,
    save_image,
)

__all__ = [
    "COLORMAPS",
    "STYLES",
    "ColorMap",
    "ColorMapSpecError",
    "blend",
    "get_colormap",
    "get_style",
    "graymap",
    "grid",
    "heatmap",
    "heatmap_png",
    "list_colormaps",
    "list_styles",
    "load_heatmap",
    "normalize",
    "overlay",
    "recolor",
    "register_colormap",
    "register_style",
    "save_heatmap",
    "save_image",
]
