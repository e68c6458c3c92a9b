"""Attribution (PyTorch, no files): a small core (:mod:`~relscope.attribution.core`: the
result type, targets, fills, checks), LRP (:mod:`~relscope.attribution.lrp`: engine,
graph, rules, composites, canonizers) and the other methods
(:mod:`~relscope.attribution.methods`: gradients, occlusion / LIME / RISE, Grad-CAM,
patterns, attention rollout), all behind one attributor registry.

>>> import torch
>>> model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))
>>> x = torch.randn(5, 4)
>>> with get_composite("epsilon_plus_flat").context(model) as lrp:
...     output, relevance = lrp(x)  # explains the predicted class
>>> relevance.shape
torch.Size([5, 4])
>>> output, attribution = get_attributor("smoothgrad", n=16)(model, x, target=0)

The attributors ``Gradient``, ``GuidedBackprop`` and ``DeconvNet`` share their names with
rules; import them from :mod:`relscope.attribution.methods.gradients` or use ``get_attributor``.
"""

import importlib
from typing import Any

from relscope.attribution.attributors import (
    Attributor,
    get_attributor,
    list_attributors,
    register_attributor,
)
from relscope.attribution.core import Attribution
from relscope.attribution.lrp.canonizers import AttributeOverride, Canonizer, MergeBatchNorm
from relscope.attribution.lrp.composites import (
    Composite,
    First,
    Index,
    Kind,
    Last,
    Name,
    Predicate,
    get_composite,
    list_composites,
    register_composite,
    segments,
)
from relscope.attribution.lrp.engine import LRP, Diagnostics, NumericalError, attribute
from relscope.attribution.lrp.graph import Layer, TraceError, trace
from relscope.attribution.lrp.rules import (
    AlphaBeta,
    Epsilon,
    Flat,
    Gamma,
    Gradient,
    Norm,
    Pass,
    ReLUDeconvNet,
    ReLUGuidedBackprop,
    Rule,
    UnifiedRule,
    UniformSplit,
    WinnerTakesAll,
    WSquare,
    ZBox,
    ZPlus,
    get_rule,
    list_rules,
    register_rule,
)
from relscope.attribution.methods.cam import GradCAM
from relscope.attribution.methods.gradients import (
    DeconvNet,
    DeepTaylor,
    GuidedBackprop,
    InputXGradient,
    IntegratedGradients,
    LRPAttributor,
    SmoothGrad,
)
from relscope.attribution.methods.lime import LIME
from relscope.attribution.methods.occlusion import Occlusion
from relscope.attribution.methods.patterns import PatternAttribution, PatternNet
from relscope.attribution.methods.rise import RISE
from relscope.attribution.methods.rollout import AttentionRollout


def __getattr__(name: str) -> Any:
    # Drawing moved to relscope.render (no torch); the documented old imports still work:
    # ``from relscope.attribution import image`` and ``relscope.attribution.colormaps``.
    if name in _MOVED:
        return importlib.import_module(_MOVED[name])
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_MOVED = {"image": "relscope.render", "colormaps": "relscope.render.colormaps"}

__all__ = [
    "LIME",
    "LRP",
    "RISE",
    "AlphaBeta",
    "AttentionRollout",
    "AttributeOverride",
    "Attribution",
    "Attributor",
    "Canonizer",
    "Composite",
    "DeconvNet",
    "DeepTaylor",
    "Diagnostics",
    "Epsilon",
    "First",
    "Flat",
    "Gamma",
    "GradCAM",
    "Gradient",
    "GuidedBackprop",
    "Index",
    "InputXGradient",
    "IntegratedGradients",
    "Kind",
    "LRPAttributor",
    "Last",
    "Layer",
    "MergeBatchNorm",
    "Name",
    "Norm",
    "NumericalError",
    "Occlusion",
    "Pass",
    "PatternAttribution",
    "PatternNet",
    "Predicate",
    "ReLUDeconvNet",
    "ReLUGuidedBackprop",
    "Rule",
    "SmoothGrad",
    "TraceError",
    "UnifiedRule",
    "UniformSplit",
    "WSquare",
    "WinnerTakesAll",
    "ZBox",
    "ZPlus",
    "attribute",
    "get_attributor",
    "get_composite",
    "get_rule",
    "list_attributors",
    "list_composites",
    "list_rules",
    "register_attributor",
    "register_composite",
    "register_rule",
    "segments",
    "trace",
]
