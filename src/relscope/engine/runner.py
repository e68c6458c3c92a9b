"""Carry out a run configuration file: attribute, analyze and write the project in one go.

The file's sections and keys are documented in ``relscope run --help`` and
``docs/run-config.yaml``; paths are relative to the file. Running it again reuses what is
valid: the attributions when the model, data and attribution settings are unchanged (they
are recomputed otherwise), and every cached analysis step before the first changed one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from relscope.analysis import Processor, SpRAy, spray_config
from relscope.attribution.config import method_config
from relscope.data.analysis_db import LAYOUTS
from relscope.data.check import ProjectReport
from relscope.data.labels import LabelMap, load_label_map, save_label_map
from relscope.data.model import load_model
from relscope.engine.analysis import AnalysisSummary, analyze, pipeline_text
from relscope.engine.attribution import (
    STRATEGIES,
    AttributionRun,
    attribute,
    holds_attributions,
    plan_shards,
    selected_samples,
    shard_paths,
    stored_method,
)
from relscope.engine.backend import Backend, or_local
from relscope.engine.engines import open_backend
from relscope.engine.inputs import (
    load_method,
    open_input,
    parse_classes,
    read_yaml_file,
    resolve_device,
)
from relscope.engine.progress import Progress, or_silent
from relscope.engine.project import write_project
from relscope.errors import ConfigError

__all__ = ["RunResult", "load_run_config", "run"]

_SECTIONS = {
    "project": {"folder", "name"},
    "model": {"factory", "weights", "params", "allow_pickle"},
    "dataset": {"path", "label_map", "input_size", "up_sampling", "down_sampling", "mean", "std"},
    "attribution": {"method", "params", "strategy", "classes", "batch_size", "device", "workers"},
    "analysis": {"name", "layout", "pipeline", "set", "categories", "jobs"},
    "engine": {
        "backend", "address", "workers", "cpus_per_worker", "gpus_per_worker", "shard_size",
        "stream",
    },
}  # fmt: skip


@dataclass(frozen=True)
class RunResult:
    """What :func:`run` wrote: the project file and the results of its three steps."""

    project: Path
    attribution: AttributionRun
    analysis: AnalysisSummary
    report: ProjectReport


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


def run(
    path: Path, *, progress: Progress | None = None, backend: Backend | None = None
) -> RunResult:
    """Carry out the configuration file ``path``.

    ``progress`` hears the attribution and analysis tasks, notes, and the three results
    (attribution run, analysis summary, project report) as reports. The work runs on
    ``backend``; by default on the file's ``engine`` section (``backend: ray`` with its
    ``address``, ``workers``, ``cpus_per_worker``, ``gpus_per_worker``; attribution in
    shards of ``shard_size``, ``stream`` for clusters without a shared filesystem), else on
    this machine (the categories in ``analysis.jobs`` processes).
    """
    config = load_run_config(path.absolute())
    section = config["engine"]
    if backend is not None or section.get("backend", "local") == "local":
        return _run(path, config, progress, backend)
    workers = section.get("workers")
    with open_backend(
        str(section["backend"]),
        address=section.get("address"),
        workers=None if workers in (None, 0) else int(workers),
        cpus_per_worker=float(section.get("cpus_per_worker", 1.0)),
        gpus_per_worker=float(section.get("gpus_per_worker", 0.0)),
    ) as opened:
        return _run(path, config, progress, opened)


def _run(
    path: Path,
    config: dict[str, dict[str, Any]],
    progress: Progress | None,
    backend: Backend | None,
) -> RunResult:
    progress = or_silent(progress)
    path = path.absolute()
    engine_section = config["engine"]
    shard_size = engine_section.get("shard_size")
    stream = engine_section.get("stream") is True
    sharded = shard_size is not None or stream or bool(getattr(backend, "distributed", False))
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
    device_name = str(attribution_section.get("device", "auto"))
    # Sharded, the device is chosen by each worker ("auto": the GPU it was given).
    device = resolve_device("cpu" if sharded else device_name)
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
    batch_size = int(attribution_section.get("batch_size", 32))
    if sharded:
        planned = plan_shards(expected, batch_size, shard_size)
        files = zip(shard_paths(attribution, len(planned)), planned, strict=True)
        redo = any(f.is_file() and not holds_attributions(f, stored, rows, factory)
                   for f, rows in files)  # fmt: skip
    else:
        redo = attribution.is_file() and not holds_attributions(
            attribution, stored, expected, factory
        )
    if redo:
        progress.message("the attribution settings changed: attributing again")
    with data:
        attributed = attribute(
            data,
            model,
            method_cfg,
            attribution,
            strategy=strategy,
            classes=classes,
            batch_size=batch_size,
            device=device_name if sharded else device,
            num_workers=int(attribution_section.get("workers", 0)),
            model_name=factory,
            overwrite=redo,
            progress=progress,
            backend=backend,
            shard_size=None if shard_size is None else int(shard_size),
            stream=stream,
        )
        if label_path is None:
            label_path = save_label_map(_index_names(data), folder / "labels.json")

    name = str(analysis_section.get("name", "spray"))
    summary = analyze(
        attributed.files,
        folder / "analysis.h5",
        categories=parse_classes(analysis_section.get("categories"), "analysis.categories"),
        config=pipeline,
        name=name,
        cache=folder / "cache.h5",
        replace=True,
        labels=load_label_map(label_path),
        layout=layout,
        progress=progress,
        backend=or_local(backend, int(analysis_section.get("jobs", 1))),
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
        attributions=attributed.files,
        attribution_strategy=strategy,
        analyses=[folder / "analysis.h5"],
        analysis_method=name,
        allow_root=roots,
    )
    progress.report(report)
    if roots:
        allow = " ".join(f"--allow-root {root}" for root in roots)
        progress.message(
            f"inputs outside {folder} are referenced: `relscope validate {project} {allow}`"
        )
    return RunResult(project, attributed, summary, report)


def _index_names(dataset: Any) -> LabelMap:
    """Classes named by their index, for datasets without a label map."""
    labels = np.asarray(dataset.labels())
    count = labels.shape[1] if labels.ndim == 2 else int(labels.max()) + 1
    return LabelMap.from_names(str(i) for i in range(count))
