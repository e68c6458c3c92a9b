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

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import typer
import yaml

from relscope.analysis import Processor, SpRAy, spray_config
from relscope.attribution.config import method_config
from relscope.cli._common import console, parse_classes, read_yaml_file, user_errors
from relscope.cli.analyze import analyze_attributions, pipeline_text
from relscope.cli.attribute import (
    STRATEGIES,
    attribute_dataset,
    holds_attributions,
    load_method,
    open_input,
    print_run,
    resolve_device,
    selected_samples,
    stored_method,
)
from relscope.cli.project import print_report, write_project
from relscope.data.analysis_db import LAYOUTS
from relscope.data.labels import LabelMap, load_label_map, save_label_map
from relscope.data.model import load_model
from relscope.errors import ConfigError

__all__ = ["load_run_config", "run_config"]

_SECTIONS = {
    "project": {"folder", "name"},
    "model": {"factory", "weights", "params", "allow_pickle"},
    "dataset": {"path", "label_map", "input_size", "up_sampling", "down_sampling", "mean", "std"},
    "attribution": {"method", "params", "strategy", "classes", "batch_size", "device", "workers"},
    "analysis": {"name", "layout", "pipeline", "set", "categories", "jobs"},
}

EXAMPLES = """
[bold]Examples[/bold]

  relscope run experiment.yaml

See `relscope run --help` above for the configuration keys, and docs/run-config.yaml for a
commented example.
"""


def load_run_config(path: Path) -> dict[str, dict[str, Any]]:
    """Read and check the configuration file: known sections and keys, required keys."""
    document = read_yaml_file(path, "configuration file")
    if not isinstance(document, Mapping):
        raise ConfigError(f"{path}: expected a mapping of sections ({', '.join(_SECTIONS)})")
    unknown = sorted(set(document) - set(_SECTIONS))
    if unknown:
        raise ConfigError(f"{path}: unknown section(s) {', '.join(map(str, unknown))}")
    config: dict[str, dict[str, Any]] = {}
    for section, keys in _SECTIONS.items():
        body = document.get(section) or {}
        if not isinstance(body, Mapping):
            raise ConfigError(f"{path}: section {section!r} must be a mapping")
        extra = sorted(set(body) - keys)
        if extra:
            raise ConfigError(
                f"{path}: unknown key(s) {', '.join(map(str, extra))} in {section!r}; "
                f"valid: {', '.join(sorted(keys))}"
            )
        config[section] = dict(body)
    for section, key in (("model", "factory"), ("dataset", "path")):
        if not config[section].get(key):
            raise ConfigError(f"{path}: {section}.{key} is required")
    return config


def _path(base: Path, value: Any, where: str) -> Path:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where} must be a path, got {value!r}")
    return (base / value).absolute()


def _pipeline(base: Path, analysis: Mapping[str, Any]) -> str:
    """The analysis pipeline's YAML: 'spray' or a file, with the ``set`` changes applied."""
    source = analysis.get("pipeline", "spray")
    text = pipeline_text(source if source == "spray" else str(_path(base, source, "pipeline")))
    changes = analysis.get("set") or {}
    if not changes:
        return text
    if not isinstance(changes, Mapping):
        raise ConfigError("analysis.set must map task names to parameter mappings (or null)")
    config = yaml.safe_load(text)
    tasks = config.get("tasks", {})
    for task, params in changes.items():
        if task not in SpRAy.declared_tasks():
            raise ConfigError(
                f"analysis.set: unknown task {task!r}; tasks: {', '.join(SpRAy.declared_tasks())}"
            )
        if params is None:
            tasks[task] = None
            continue
        if not isinstance(params, Mapping):
            raise ConfigError(f"analysis.set.{task} must be a mapping of parameters or null")
        if tasks.get(task) is None:
            raise ConfigError(f"analysis.set.{task}: the task is skipped in the pipeline")
        tasks[task].setdefault("params", {}).update(params)
    return spray_config(Processor.from_dict(config))


def run_config(path: Path) -> Path:
    """Carry out the configuration file ``path``; returns the project file written."""
    path = path.absolute()
    config = load_run_config(path)
    base = path.parent
    folder = _path(base, config["project"].get("folder", "relscope-run"), "project.folder")
    folder.mkdir(parents=True, exist_ok=True)
    model_section, data_section = config["model"], config["dataset"]
    attribution_section, analysis_section = config["attribution"], config["analysis"]

    method = attribution_section.get("method", "epsilon_plus_flat")
    params = attribution_section.get("params") or {}
    if not isinstance(params, Mapping):
        raise ConfigError("attribution.params must be a mapping")
    if Path(str(method)).suffix.lower() in (".json", ".yaml", ".yml"):
        if params:
            raise ConfigError("attribution.params apply to a method name, not to a file")
        method_cfg = load_method(str(_path(base, method, "attribution.method")))
    else:
        method_cfg = method_config({"method": method, "params": dict(params)})
    strategy = attribution_section.get("strategy", "true_label")
    if strategy not in STRATEGIES:
        raise ConfigError(f"attribution.strategy must be one of {', '.join(STRATEGIES)}")
    classes = parse_classes(attribution_section.get("classes"), "attribution.classes")
    device = resolve_device(str(attribution_section.get("device", "auto")))
    pipeline = _pipeline(base, analysis_section)  # refuse a bad analysis before attributing
    layout = analysis_section.get("layout", "virelay")
    if layout not in LAYOUTS:
        raise ConfigError(f"analysis.layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")

    dataset_path = _path(base, data_section["path"], "dataset.path")
    label_map = data_section.get("label_map")
    label_path = None if label_map is None else _path(base, label_map, "dataset.label_map")
    size = data_section.get("input_size")
    data = open_input(
        dataset_path,
        input_size=tuple(size) if size else None,
        up_sampling=data_section.get("up_sampling", "none"),
        down_sampling=data_section.get("down_sampling", "none"),
        label_map=label_path if dataset_path.is_dir() else None,
        mean=data_section.get("mean"),
        std=data_section.get("std"),
    )
    weights = model_section.get("weights")
    weights_path = None if weights is None else _path(base, weights, "model.weights")
    factory = str(model_section["factory"])
    model = load_model(
        factory,
        weights_path,
        params=model_section.get("params"),
        device=device,
        allow_pickle=model_section.get("allow_pickle") is True,
    )

    attribution = folder / "attribution.h5"
    stored = stored_method(method_cfg, strategy)
    expected = selected_samples(data, classes)
    redo = attribution.is_file() and not holds_attributions(attribution, stored, expected, factory)
    if redo:
        console.print("the attribution settings changed: attributing again")
    with data:
        run = attribute_dataset(
            data,
            model,
            method_cfg,
            attribution,
            strategy=strategy,
            classes=classes,
            batch_size=int(attribution_section.get("batch_size", 32)),
            device=device,
            num_workers=int(attribution_section.get("workers", 0)),
            model_name=factory,
            overwrite=redo,
        )
        if label_path is None:
            label_path = save_label_map(_index_names(data), folder / "labels.json")
    print_run(run)

    name = str(analysis_section.get("name", "spray"))
    analyze_attributions(
        attribution,
        folder / "analysis.h5",
        categories=parse_classes(analysis_section.get("categories"), "analysis.categories"),
        config=pipeline,
        name=name,
        jobs=int(analysis_section.get("jobs", 1)),
        cache=folder / "cache.h5",
        replace=True,
        labels=load_label_map(label_path),
        layout=layout,
    )
    project = folder / "project.yaml"
    roots = sorted({p.parent for p in (dataset_path, label_path, weights_path) if p is not None})
    roots = [root for root in roots if not root.is_relative_to(folder)]
    report = write_project(
        project,
        name=str(config["project"].get("name", folder.name)),
        model=factory,
        model_weights=weights_path,
        label_map=label_path,
        dataset=dataset_path,
        input_size=tuple(size) if size else None,
        up_sampling=data_section.get("up_sampling", "none"),
        down_sampling=data_section.get("down_sampling", "none"),
        attributions=[attribution],
        attribution_strategy=strategy,
        analyses=[folder / "analysis.h5"],
        analysis_method=name,
        allow_root=roots,
    )
    print_report(report)
    if roots:
        allow = " ".join(f"--allow-root {root}" for root in roots)
        console.print(
            f"inputs outside {folder} are referenced: `relscope validate {project} {allow}`"
        )
    return project


def _index_names(dataset: Any) -> LabelMap:
    """Classes named by their index, for datasets without a label map."""
    labels = np.asarray(dataset.labels())
    count = labels.shape[1] if labels.ndim == 2 else int(labels.max()) + 1
    return LabelMap.from_names(str(i) for i in range(count))


def register(app: typer.Typer) -> None:
    """Add ``relscope run`` to ``app``."""

    @app.command(
        "run", epilog=EXAMPLES, help=__doc__.replace("``relscope run CONFIG.yaml``: a", "A", 1)
    )
    @user_errors
    def run(config: Path = typer.Argument(..., help="The YAML configuration file.")) -> None:
        project = run_config(config)
        console.print(f"wrote {project}")
