"""Attribution methods other than LRP: gradients (plain, SmoothGrad, Integrated Gradients,
...), occlusion, LIME and RISE, Grad-CAM, PatternNet / PatternAttribution.

Each registers itself as an attributor (:func:`relscope.attribution.get_attributor`).
"""

from relscope.attribution.methods import cam, gradients, occlusion, patterns

__all__ = ["cam", "gradients", "occlusion", "patterns"]
