"""Dataset-wide jobs as a library: attribute a dataset, analyze the attributions, carry out
a run configuration, build the demo project.

No terminal and no HTTP here: progress reaches the caller through a
:class:`~relscope.engine.progress.Progress` (default: silent), and independent pieces run on
a :class:`~relscope.engine.backend.Backend` (default: :class:`LocalBackend`). The command
line (:mod:`relscope.cli`) parses options, calls these functions and presents what they
report.
"""

from relscope.engine.analysis import AnalysisSummary, RankedCategory, analyze
from relscope.engine.attribution import AttributionRun, attribute
from relscope.engine.backend import Backend, LocalBackend
from relscope.engine.mnist_demo import DemoResult, demo
from relscope.engine.progress import Progress, Silent
from relscope.engine.project import write_project
from relscope.engine.runner import RunResult, load_run_config, run

__all__ = [
    "AnalysisSummary",
    "AttributionRun",
    "Backend",
    "DemoResult",
    "LocalBackend",
    "Progress",
    "RankedCategory",
    "RunResult",
    "Silent",
    "analyze",
    "attribute",
    "demo",
    "load_run_config",
    "run",
    "write_project",
]
