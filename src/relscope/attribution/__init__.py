"""Attribution: rules, composites, canonizers, the LRP engine and the other attribution
methods (PyTorch, no files).

>>> import torch
>>> model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))
>>> x = torch.randn(5, 4)
>>> with get_composite("epsilon_plus_flat").context(model) as lrp:
...     output, relevance = lrp(x)  # explains the predicted class
>>> relevance.shape
torch.Size([5, 4])
>>> output, attribution = get_attributor("smoothgrad", n=16)(model, x, target=0)

The attributors ``Gradient``, ``GuidedBackprop`` and ``DeconvNet`` share their names with
rules; import them from :mod:`relscope.attribution.gradients` or use ``get_attributor``.
"""

from relscope.attribution.attributors import (
    Attributor,
    get_attributor,
    list_attributors,
    register_attributor,
)
from relscope.attribution.cam import GradCAM
from relscope.attribution.canonizers import AttributeOverride, Canonizer, MergeBatchNorm
from relscope.attribution.composites import (
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
from relscope.attribution.gradients import (
    DeepTaylor,
    InputXGradient,
    IntegratedGradients,
    LRPAttributor,
    SmoothGrad,
)
from relscope.attribution.graph import Layer, TraceError, trace
from relscope.attribution.lrp import LRP, Attribution, Diagnostics, NumericalError, attribute
from relscope.attribution.patterns import PatternAttribution, PatternNet
from relscope.attribution.perturbation import LIME, RISE, Occlusion
from relscope.attribution.rules import (
    AlphaBeta,
    DeconvNet,
    Epsilon,
    Flat,
    Gamma,
    Gradient,
    GuidedBackprop,
    Norm,
    Pass,
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

__all__ = [
    "LIME",
    "LRP",
    "RISE",
    "AlphaBeta",
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
