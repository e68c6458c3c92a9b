"""Attribution: rules, composites, canonizers and the LRP engine (PyTorch, no files).

>>> from relscope.attribution import LRP, get_composite      # doctest: +SKIP
>>> with get_composite("epsilon_plus_flat").context(model) as lrp:
...     output, relevance = lrp(x, target)
"""

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
from relscope.attribution.graph import Layer, TraceError, trace
from relscope.attribution.lrp import LRP, Attribution, Diagnostics, NumericalError, attribute
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
    WSquare,
    ZBox,
    ZPlus,
    get_rule,
    list_rules,
    register_rule,
)

__all__ = [
    "LRP",
    "AlphaBeta",
    "AttributeOverride",
    "Attribution",
    "Canonizer",
    "Composite",
    "DeconvNet",
    "Diagnostics",
    "Epsilon",
    "First",
    "Flat",
    "Gamma",
    "Gradient",
    "GuidedBackprop",
    "Index",
    "Kind",
    "Last",
    "Layer",
    "MergeBatchNorm",
    "Name",
    "Norm",
    "NumericalError",
    "Pass",
    "Predicate",
    "Rule",
    "TraceError",
    "UnifiedRule",
    "UniformSplit",
    "WSquare",
    "ZBox",
    "ZPlus",
    "attribute",
    "get_composite",
    "get_rule",
    "list_composites",
    "list_rules",
    "register_composite",
    "register_rule",
    "segments",
    "trace",
]
