"""Attribution methods other than LRP: gradients (plain, SmoothGrad, Integrated Gradients,
...), occlusion, LIME and RISE (sharing :mod:`~relscope.attribution.methods.masking`),
Grad-CAM, PatternNet / PatternAttribution, attention rollout.

Each registers itself as an attributor (:func:`relscope.attribution.get_attributor`).
"""

from relscope.attribution.methods import cam, gradients, lime, occlusion, patterns, rise, rollout

__all__ = ["cam", "gradients", "lime", "occlusion", "patterns", "rise", "rollout"]
