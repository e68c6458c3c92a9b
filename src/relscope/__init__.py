"""relscope: dataset-wide explainable AI for PyTorch.

Layers, each usable alone (lower layers never import higher ones)::

    relscope.render -> relscope.attribution -> relscope.evaluation -> relscope.analysis
    -> relscope.data -> relscope.engine -> relscope.app / relscope.cli
"""

from relscope._version import __version__
from relscope.errors import ConfigError, FormatError, PathError, RelscopeError, RelscopeWarning

__all__ = [
    "ConfigError",
    "FormatError",
    "PathError",
    "RelscopeError",
    "RelscopeWarning",
    "__version__",
]
