"""``relscope run CONFIG.yaml``: attribute + analyze + project from one configuration file.

The configuration (paths relative to the file; only ``model.factory`` and ``dataset.path``
are required)::

    project:
      folder: out              # every output goes here: attribution.h5, analysis.h5,
      name: my project         #   cache.h5 (cached analysis steps) and project.yaml
    model:
      factory: mypkg.models:cnn
      weights: cnn.pt          # .pt/.pth/.safetensors, loaded safely (tensors only)
      params: {}               # keyword arguments of the factory
      allow_pickle: false      # true unpickles a trusted weights file (runs its code)
    dataset:
      path: data.h5            # HDF5 dataset database or image folder (one folder per class)
      label_map: labels.json   # default: classes named by their index
      input_size: [224, 224]   # image folders: resampled to this size
      up_sampling: none        # image folders: none|fill_zeros|...|resize
      down_sampling: none      # image folders: none|center_crop|resize
      mean: [0.485, 0.456, 0.406]   # optional per-channel normalization
      std: [0.229, 0.224, 0.225]
    attribution:
      method: epsilon_gamma_box     # composite or attributor name, or a JSON/YAML
      params: {low: -2.1, high: 2.6}  #   configuration file (e.g. from the designer)
      strategy: true_label          # or predicted_label
      classes: [3, 7]               # default: every class
      batch_size: 32
      device: auto                  # auto|cpu|cuda|cuda:N
      workers: 0
    analysis:
      name: spray                   # the project file's analysis_method
      layout: virelay               # or nested (relscope reads it, ViRelAy cannot)
      pipeline: spray               # or a YAML pipeline file (relscope analyze --pipeline)
      set:                          # per-task parameter changes; null skips a task
        affinity: {n_neighbors: 15}
        umap: null
      categories: [3, 7]            # default: every class attributed
      jobs: 1

Inputs outside the folder are referenced by absolute path (as allowed roots of the project:
``relscope validate`` then needs ``--allow-root``). Running it again reuses what is valid:
the attributions when the model, data and attribution settings are unchanged (they are
recomputed otherwise), and every cached analysis step before the first changed one.
"""

from __future__ import annotations

from pathlib import Path

import typer

from relscope.cli._common import ConsoleProgress, console, user_errors
from relscope.engine.runner import run as run_config

EXAMPLES = """
[bold]Examples[/bold]

  relscope run experiment.yaml

See `relscope run --help` above for the configuration keys, and docs/run-config.yaml for a
commented example.
"""


def register(app: typer.Typer) -> None:
    """Add ``relscope run`` to ``app``."""

    @app.command(
        "run", epilog=EXAMPLES, help=__doc__.replace("``relscope run CONFIG.yaml``: a", "A", 1)
    )
    @user_errors
    def run(config: Path = typer.Argument(..., help="The YAML configuration file.")) -> None:
        with ConsoleProgress() as progress:
            result = run_config(config, progress=progress)
        console.print(f"wrote {result.project}")
