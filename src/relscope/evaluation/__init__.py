"""Evaluation of attributions: perturbation curves, channel ablation and LRP diagnostics.

Usage::

    from relscope.evaluation import perturbation_curve
    morf = perturbation_curve(model, x, relevance, order="most", patch=4, steps=32)
    lerf = perturbation_curve(model, x, relevance, order="least", patch=4, steps=32)
    morf.auc().mean() < lerf.auc().mean()  # for a useful attribution
"""

from relscope.evaluation.ablation import (
    Ablation,
    Channels,
    GuidedAblation,
    ablate,
    relevance_guided_ablation,
)
from relscope.evaluation.compare import Comparison, compare
from relscope.evaluation.diagnostics import DiagnosticsReport, diagnose
from relscope.evaluation.perturbation import (
    Fill,
    PerturbationCurve,
    TargetSpec,
    perturbation_curve,
)

__all__ = [
    "Ablation",
    "Channels",
    "Comparison",
    "DiagnosticsReport",
    "Fill",
    "GuidedAblation",
    "PerturbationCurve",
    "TargetSpec",
    "ablate",
    "compare",
    "diagnose",
    "perturbation_curve",
    "relevance_guided_ablation",
]
