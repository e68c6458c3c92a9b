"""Designer sessions: single-sample LRP design on one model (the VisLRPDesigner workflow).

A :class:`DesignSession` holds a model, its class names and its samples: the layers in
execution order for the segment ruler, model inputs from samples or uploads, top-10
predictions, explanations (:class:`Explanation`: input relevance, the relevance at every
segment boundary, per-layer sums, warnings). A :class:`DesignStore` keeps a project's
configurations as JSON files in ``designs/``, in the format ``relscope attribute --method``
reads. Results are cached per input, and :class:`Requests` hands out tickets by which a
newer request supersedes an older one (:class:`SupersededError`). No HTTP here.
"""

from relscope.engine.designer.compare import Column, Grid, compare
from relscope.engine.designer.explain import Boundary, Explainer, Explanation, lrp_composite
from relscope.engine.designer.flipping import (
    FLIP_FILLS,
    Curves,
    Stroke,
    flip,
    flipping_curves,
    stroke_mask,
)
from relscope.engine.designer.inputs import (
    MAX_UPLOAD_BYTES,
    MAX_UPLOAD_PIXELS,
    UPLOAD_FORMATS,
    InputSettings,
)
from relscope.engine.designer.layers import LayerInfo, model_layers
from relscope.engine.designer.neurons import (
    MAX_POSITIONS,
    ChannelMaps,
    NeuronData,
    ablate,
    channel_maps,
    layer_name,
    neurons,
)
from relscope.engine.designer.session import TOP_K, DesignSession, Prediction
from relscope.engine.designer.store import (
    DESIGNS_FOLDER,
    NAME_PATTERN,
    DesignStore,
    check_name,
    check_segments,
)
from relscope.engine.designer.supersede import Requests, SupersededError, Ticket

__all__ = [
    "DESIGNS_FOLDER",
    "FLIP_FILLS",
    "MAX_POSITIONS",
    "MAX_UPLOAD_BYTES",
    "MAX_UPLOAD_PIXELS",
    "NAME_PATTERN",
    "TOP_K",
    "UPLOAD_FORMATS",
    "Boundary",
    "ChannelMaps",
    "Column",
    "Curves",
    "DesignSession",
    "DesignStore",
    "Explainer",
    "Explanation",
    "Grid",
    "InputSettings",
    "LayerInfo",
    "NeuronData",
    "Prediction",
    "Requests",
    "Stroke",
    "SupersededError",
    "Ticket",
    "ablate",
    "channel_maps",
    "check_name",
    "check_segments",
    "compare",
    "flip",
    "flipping_curves",
    "layer_name",
    "lrp_composite",
    "model_layers",
    "neurons",
    "stroke_mask",
]
