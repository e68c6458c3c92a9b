"""Write a project file tying dataset, label map, attributions and analyses together, after
cross-checking the files."""

from __future__ import annotations

from pathlib import Path

from relscope.data.analysis_db import AnalysisDatabase
from relscope.data.attribution_db import AttributionDatabase
from relscope.data.check import ProjectReport, check_loaded_project
from relscope.data.project import (
    DOWN_SAMPLING_METHODS,
    UP_SAMPLING_METHODS,
    AnalysisSpec,
    AttributionSpec,
    DatasetSpec,
    Project,
    resolve_inside,
    save_project,
)
from relscope.errors import ConfigError

__all__ = ["write_project"]


def write_project(
    out: Path,
    *,
    name: str,
    model: str,
    label_map: Path,
    dataset: Path,
    dataset_name: str | None = None,
    input_size: tuple[int, int] | None = None,
    up_sampling: str = "none",
    down_sampling: str = "none",
    attributions: list[Path] = (),
    attribution_method: str | None = None,
    attribution_strategy: str = "true_label",
    analyses: list[Path] = (),
    analysis_method: str | None = None,
    model_weights: Path | None = None,
    allow_root: list[Path] = (),
) -> ProjectReport:
    """Cross-check the files and write the project file ``out`` (replacing it).

    Raises a one-line :class:`~relscope.errors.ConfigError` naming the first problem, and
    writes nothing, if the files do not agree with each other.
    """
    out = out.absolute()
    base = out.parent.resolve()
    roots = [base, *(root.resolve() for root in allow_root)]
    is_folder = dataset.is_dir()

    def inside(path: Path, *, directory: bool = False) -> Path:
        return resolve_inside(path.absolute(), base, roots, directory=directory)

    spec = DatasetSpec(
        name=dataset_name or dataset.stem,
        type="image_directory" if is_folder else "hdf5",
        path=inside(dataset, directory=is_folder),
        input_width=input_size[1] if input_size else None,
        input_height=input_size[0] if input_size else None,
        up_sampling_method=up_sampling,
        down_sampling_method=down_sampling,
    )
    for option, value, allowed in (
        ("--up-sampling", up_sampling, UP_SAMPLING_METHODS),
        ("--down-sampling", down_sampling, DOWN_SAMPLING_METHODS),
        ("--attribution-strategy", attribution_strategy, ("true_label", "predicted_label")),
    ):
        if value not in allowed:
            raise ConfigError(f"{option} must be one of {', '.join(allowed)}, got {value!r}")
    attribution_spec = None
    if attributions:
        sources = [inside(path) for path in attributions]
        attribution_spec = AttributionSpec(
            _attribution_method(sources, attribution_method), attribution_strategy, sources
        )
    project = Project(
        name=name,
        model=model,
        label_map=inside(label_map),
        dataset=spec,
        attributions=attribution_spec,
        analyses=_analysis_specs([inside(path) for path in analyses], analysis_method),
        path=out,
        model_weights=None if model_weights is None else inside(model_weights),
    )
    report = check_loaded_project(project)
    if not report.ok:
        first = report.errors[0]
        more = f" (and {len(report.errors) - 1} more)" if len(report.errors) > 1 else ""
        raise ConfigError(f"{first.where}: {first.message}{more}; nothing was written")
    save_project(project, out, allowed_roots=allow_root)
    return report


def _analysis_specs(files: list[Path], method: str | None) -> list[AnalysisSpec]:
    grouped: dict[str, list[Path]] = {}
    for file in files:
        if method is not None:
            grouped.setdefault(method, []).append(file)
            continue
        with AnalysisDatabase(file) as database:
            for name in database.analyses:
                grouped.setdefault(name, []).append(file)
    return [AnalysisSpec(name, sources) for name, sources in grouped.items()]


def _attribution_method(files: list[Path], given: str | None) -> str:
    if given:
        return given
    with AttributionDatabase(files[0]) as database:
        method = database.metadata.get("method") or {}
    name = method.get("name") if isinstance(method, dict) else None
    if not isinstance(name, str) or not name:
        raise ConfigError(
            f"{files[0]}: the file does not name its attribution method; "
            "pass --attribution-method NAME"
        )
    return name
