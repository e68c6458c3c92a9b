"""Layer-wise relevance propagation: the engine, the traced graph, rules, composites,
canonizers and the fallbacks for operations without a rule.

``relscope.attribution.lrp`` was one module before the engine gained a package; its names
(``LRP``, ``Attribution``, ``Diagnostics``, ...) are still importable from here.
"""

# The composites register themselves on import; the engine finds them by name.
from relscope.attribution.lrp import composites as composites
from relscope.attribution.lrp.engine import *  # noqa: F403 - the old lrp module's names
from relscope.attribution.lrp.engine import __all__ as __all__
