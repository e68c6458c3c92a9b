"""Rendering without PyTorch: colour maps, relevance maps, visualization styles, grids,
palette PNGs and token heatmaps (NumPy and Pillow only; torch tensors are accepted without
importing torch).

- :mod:`~relscope.render.colormaps`: colour maps by name or specification.
- :mod:`~relscope.render.maps`: relevance and images as arrays, normalization.
- :mod:`~relscope.render.styles`: the visualization styles (one registration line each).
- :mod:`~relscope.render.png`: PNG files and palette heatmaps (recolourable).
- :mod:`~relscope.render.tokens`: text coloured by relevance per token (HTML and PNG).

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
from relscope.render.maps import NORMALIZATIONS, SCOPES, normalize, project, to_map
from relscope.render.png import (
    heatmap_png,
    image_png,
    load_heatmap,
    recolor,
    save_heatmap,
    save_image,
    unit_image,
)
from relscope.render.styles import (
    STYLES,
    Style,
    blend,
    get_style,
    graymap,
    grid,
    heatmap,
    list_styles,
    masked_input,
    overlay,
    projection,
    register_style,
    scaled_input,
)
from relscope.render.tokens import (
    TOKEN_SCHEMES,
    TokenBox,
    clean_tokens,
    layout_tokens,
    save_token_heatmap,
    text_colors,
    token_colors,
    token_heatmap_html,
    token_heatmap_png,
)

__all__ = [
    "COLORMAPS",
    "NORMALIZATIONS",
    "SCOPES",
    "STYLES",
    "TOKEN_SCHEMES",
    "ColorMap",
    "ColorMapSpecError",
    "Style",
    "TokenBox",
    "blend",
    "clean_tokens",
    "get_colormap",
    "get_style",
    "graymap",
    "grid",
    "heatmap",
    "heatmap_png",
    "image_png",
    "layout_tokens",
    "list_colormaps",
    "list_styles",
    "load_heatmap",
    "masked_input",
    "normalize",
    "overlay",
    "project",
    "projection",
    "recolor",
    "register_colormap",
    "register_style",
    "save_heatmap",
    "save_image",
    "save_token_heatmap",
    "scaled_input",
    "text_colors",
    "to_map",
    "token_colors",
    "token_heatmap_html",
    "token_heatmap_png",
    "unit_image",
]
