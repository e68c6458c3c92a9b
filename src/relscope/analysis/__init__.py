"""Dataset-wide analysis of attributions: processors, pipelines and cached results.

A pipeline is a :class:`Pipeline` subclass declaring named :class:`Task` steps; every step is
a :class:`Processor` (or a plain callable) with typed :class:`Param` arguments. Results can be
cached by content in an :class:`HDF5Storage` (default) or a :class:`DirectoryStorage`.

Examples
--------
>>> import numpy as np
>>> class Center(Processor):
...     scale = Param(float, 1.0, "Factor applied after centering.")
...     def function(self, data):
...         return (data - data.mean(axis=0)) * self.scale
>>> class Demo(Pipeline):
...     center = Task(Center(), allowed=Center, doc="Center the samples.")
...     norms = Task(lambda x: np.linalg.norm(x, axis=1), doc="Per-sample norm.")
>>> Demo(center=Center(scale=2.0, is_output=True))(np.eye(2))["center"]
array([[ 1., -1.],
       [-1.,  1.]])
"""

from relscope.analysis.cache import (
    MISSING,
    DirectoryStorage,
    HDF5Storage,
    Storage,
    cache_key,
    content_hash,
    open_storage,
)
from relscope.analysis.params import Configurable, Param
from relscope.analysis.pipeline import (
    FunctionProcessor,
    Parallel,
    Pipeline,
    Processor,
    Sequential,
    Shaper,
    Task,
    as_processor,
    get_processor,
    list_processors,
    register_processor,
)
from relscope.analysis.scores import eigengap, rank_categories, separability
from relscope.analysis.spray import (
    CategoryResult,
    SpRAy,
    analyze_category,
    load_spray_config,
    spray_config,
)

__all__ = [
    "MISSING",
    "CategoryResult",
    "Configurable",
    "DirectoryStorage",
    "FunctionProcessor",
    "HDF5Storage",
    "Parallel",
    "Param",
    "Pipeline",
    "Processor",
    "Sequential",
    "Shaper",
    "SpRAy",
    "Storage",
    "Task",
    "analyze_category",
    "as_processor",
    "cache_key",
    "content_hash",
    "eigengap",
    "get_processor",
    "list_processors",
    "load_spray_config",
    "open_storage",
    "rank_categories",
    "register_processor",
    "separability",
    "spray_config",
]
