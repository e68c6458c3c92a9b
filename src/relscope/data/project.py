"""Project files: the YAML document that ties dataset, label map, attributions and analyses.

The layout is the one ViRelAy's viewer reads (see ``formats.md``). Loading is defensive: the
YAML is parsed with a safe loader that also refuses aliases (no "billion laughs"), duplicate
keys and documents over 1 MiB; every value is type-checked with its key path in the error;
unknown keys are warned about; every referenced path is resolved relative to the project
file and must exist inside the project folder or an explicitly allowed root.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from relscope._atomic import atomic_write_text
from relscope.data.dataset import DATASET_KINDS, DOWN_SAMPLING_METHODS, UP_SAMPLING_METHODS
from relscope.errors import FormatError, PathError, RelscopeWarning

__all__ = [
    "DOWN_SAMPLING_METHODS",
    "UP_SAMPLING_METHODS",
    "AnalysisSpec",
    "AttributionSpec",
    "DatasetSpec",
    "Project",
    "load_project",
    "resolve_inside",
    "save_project",
]

MAX_PROJECT_BYTES = 1024 * 1024
ATTRIBUTION_STRATEGIES = ("true_label", "predicted_label")


@dataclass
class DatasetSpec:
    """The ``dataset`` section; ``path`` is absolute once loaded."""

    name: str
    type: Literal["hdf5", "image_directory"]
    path: Path
    input_width: int | None = None
    input_height: int | None = None
    up_sampling_method: str = "none"
    down_sampling_method: str = "none"
    label_index_regex: str | None = None
    label_word_net_id_regex: str | None = None


@dataclass
class AttributionSpec:
    """The ``attributions`` section: method name, strategy and the shard files."""

    attribution_method: str
    attribution_strategy: Literal["true_label", "predicted_label"]
    sources: list[Path]


@dataclass
class AnalysisSpec:
    """One entry of ``analyses``: the analysis name and the files holding it."""

    analysis_method: str
    sources: list[Path]


@dataclass
class Project:
    """A loaded (or to be saved) project. Paths are absolute."""

    name: str
    model: str
    label_map: Path
    dataset: DatasetSpec
    attributions: AttributionSpec | None = None
    analyses: list[AnalysisSpec] = field(default_factory=list)
    path: Path | None = None
    #: relscope extra (ViRelAy ignores it): the weights file of ``model``, if any.
    model_weights: Path | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def root(self) -> Path:
        """The project folder (the folder of the project file)."""
        if self.path is None:
            raise ValueError("the project has no file yet")
        return self.path.parent

    def referenced_paths(self) -> list[Path]:
        """Every file or folder the project refers to."""
        paths = [self.label_map, self.dataset.path]
        if self.model_weights is not None:
            paths.append(self.model_weights)
        if self.attributions is not None:
            paths += self.attributions.sources
        for analysis in self.analyses:
            paths += analysis.sources
        return paths


# ----------------------------------------------------------------------------------- YAML
class _StrictSafeLoader(yaml.SafeLoader):
    """SafeLoader without aliases and without silently repeated keys."""

    def compose_node(self, parent, index):  # type: ignore[no-untyped-def]
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.YAMLError(f"aliases are not allowed (line {event.start_mark.line + 1})")
        return super().compose_node(parent, index)

    def construct_mapping(self, node, deep=False):  # type: ignore[no-untyped-def]
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if not isinstance(key, str):
                raise yaml.YAMLError(
                    f"keys must be strings, found {key!r} (line {key_node.start_mark.line + 1})"
                )
            if key in seen:
                raise yaml.YAMLError(f"duplicate key {key!r} (line {key_node.start_mark.line + 1})")
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _parse_yaml(path: Path) -> Any:
    if not path.is_file():
        raise FormatError(path, "/", "an existing project YAML file", "no such file")
    size = path.stat().st_size
    if size > MAX_PROJECT_BYTES:
        raise FormatError(path, "/", f"at most {MAX_PROJECT_BYTES} bytes", f"{size} bytes")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise FormatError(path, "/", "UTF-8 text", "undecodable bytes") from None
    try:
        return yaml.load(text, Loader=_StrictSafeLoader)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1} column {mark.column + 1}" if mark else "/"
        problem = getattr(error, "problem", None) or str(error)
        raise FormatError(path, where, "valid YAML", " ".join(str(problem).split())) from None
    except RecursionError:
        raise FormatError(path, "/", "valid YAML", "nesting too deep") from None


# ------------------------------------------------------------------------------ validation
class _Reader:
    """Typed access to a parsed document that reports the key path of every problem."""

    def __init__(self, path: Path, roots: Sequence[Path]) -> None:
        self.path = path
        self.base = path.parent.resolve()
        self.roots = [self.base, *roots]
        self.warnings: list[str] = []

    def mapping(self, value: Any, key: str, known: Iterable[str]) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise FormatError(self.path, key, "a mapping", _kind(value))
        for unknown in sorted(set(value) - set(known)):
            message = f"{self.path}: {key}.{unknown}: unknown key, ignored"
            self.warnings.append(message)
            warnings.warn(message, RelscopeWarning, stacklevel=4)
        return value

    def string(self, parent: dict[str, Any], key: str, where: str, *, required: bool = True):
        if key not in parent or parent[key] is None:
            if required:
                raise FormatError(self.path, f"{where}.{key}", "a string", "nothing")
            return None
        value = parent[key]
        if not isinstance(value, str) or not value.strip():
            raise FormatError(self.path, f"{where}.{key}", "a non-empty string", _kind(value))
        return value

    def choice(self, parent: dict[str, Any], key: str, where: str, options: Sequence[str], default):
        value = parent.get(key, default)
        if value is None and default is not None:
            value = default
        if value not in options:
            raise FormatError(
                self.path, f"{where}.{key}", "one of " + ", ".join(options), repr(value)
            )
        return value

    def positive_int(self, parent: dict[str, Any], key: str, where: str, *, required: bool):
        value = parent.get(key)
        if value is None:
            if required:
                raise FormatError(self.path, f"{where}.{key}", "a positive integer", "nothing")
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise FormatError(self.path, f"{where}.{key}", "a positive integer", repr(value))
        return value

    def file(self, parent: dict[str, Any], key: str, where: str, *, directory: bool = False):
        text = self.string(parent, key, where)
        return self.resolve(text, f"{where}.{key}", directory=directory)

    def files(self, parent: dict[str, Any], key: str, where: str) -> list[Path]:
        value = parent.get(key)
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not value:
            raise FormatError(
                self.path, f"{where}.{key}", "a non-empty list of paths", _kind(value)
            )
        return [self.resolve(item, f"{where}.{key}[{i}]") for i, item in enumerate(value)]

    def resolve(self, text: Any, where: str, *, directory: bool = False) -> Path:
        if not isinstance(text, str) or not text.strip():
            raise FormatError(self.path, where, "a path string", _kind(text))
        try:
            return resolve_inside(text, self.base, self.roots, directory=directory)
        except PathError as error:
            raise PathError(f"{self.path}: {where}: {error}") from None


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, str):
        return f"the string {value[:40]!r}"
    return type(value).__name__


def resolve_inside(
    reference: str | os.PathLike[str],
    base: Path,
    roots: Sequence[Path],
    *,
    directory: bool = False,
    must_exist: bool = True,
) -> Path:
    """Resolve ``reference`` against ``base`` and require it to stay inside one of ``roots``.

    Symbolic links are followed before the check, so a link pointing out of the project
    folder is refused like a ``..`` path. Absolute references are allowed only when they
    fall inside a root.
    """
    candidate = Path(reference)
    if "\x00" in str(reference):
        raise PathError(f"{str(reference)!r} contains a NUL byte")
    resolved = (candidate if candidate.is_absolute() else base / candidate).resolve()
    resolved_roots = [Path(root).resolve() for root in roots]
    if not any(resolved.is_relative_to(root) for root in resolved_roots):
        raise PathError(
            f"{str(reference)!r} resolves to {resolved}, outside the project folder"
            + (" and the allowed roots" if len(resolved_roots) > 1 else "")
        )
    if must_exist:
        if directory and not resolved.is_dir():
            raise PathError(f"{str(reference)!r}: no such folder ({resolved})")
        if not directory and not resolved.is_file():
            raise PathError(f"{str(reference)!r}: no such file ({resolved})")
    return resolved


_TOP_KEYS = ("project",)
_PROJECT_KEYS = (
    "name", "model", "model_weights", "label_map", "dataset", "attributions", "analyses",
)  # fmt: skip
_DATASET_KEYS = (
    "name", "type", "path", "input_width", "input_height", "up_sampling_method",
    "down_sampling_method", "label_index_regex", "label_word_net_id_regex",
)  # fmt: skip
_ATTRIBUTION_KEYS = ("attribution_method", "attribution_strategy", "sources")
_ANALYSIS_KEYS = ("analysis_method", "sources")


def load_project(
    path: str | os.PathLike[str], *, allowed_roots: Sequence[str | os.PathLike[str]] = ()
) -> Project:
    """Load and validate a project file (structure, types and referenced paths).

    Raises :class:`FormatError` for malformed documents and :class:`PathError` for missing
    files or paths outside the project folder and ``allowed_roots``. Unknown keys give a
    :class:`RelscopeWarning` and are listed in ``Project.warnings``.
    """
    path = Path(path).absolute()
    document = _parse_yaml(path)
    reader = _Reader(path, [Path(root).resolve() for root in allowed_roots])
    top = reader.mapping(document, "/", _TOP_KEYS)
    if "project" not in top:
        raise FormatError(path, "project", "a mapping", "nothing")
    body = reader.mapping(top["project"], "project", _PROJECT_KEYS)
    where = "project"
    name = reader.string(body, "name", where)
    model = reader.string(body, "model", where)
    weights = reader.file(body, "model_weights", where) if "model_weights" in body else None
    label_map = reader.file(body, "label_map", where)
    if body.get("dataset") is None:
        raise FormatError(path, "project.dataset", "a mapping", "nothing")
    data = reader.mapping(body["dataset"], "project.dataset", _DATASET_KEYS)
    where = "project.dataset"
    kind = reader.choice(data, "type", where, DATASET_KINDS, None)
    index_regex = reader.string(data, "label_index_regex", where, required=False)
    wnid_regex = reader.string(data, "label_word_net_id_regex", where, required=False)
    if index_regex and wnid_regex:
        raise FormatError(
            path, where, "at most one of label_index_regex and label_word_net_id_regex", "both"
        )
    dataset = DatasetSpec(
        name=reader.string(data, "name", where),
        type=kind,
        path=reader.file(data, "path", where, directory=kind == "image_directory"),
        input_width=reader.positive_int(data, "input_width", where, required=False),
        input_height=reader.positive_int(data, "input_height", where, required=False),
        up_sampling_method=reader.choice(
            data, "up_sampling_method", where, UP_SAMPLING_METHODS, "none"
        ),
        down_sampling_method=reader.choice(
            data, "down_sampling_method", where, DOWN_SAMPLING_METHODS, "none"
        ),
        label_index_regex=index_regex,
        label_word_net_id_regex=wnid_regex,
    )
    if (dataset.input_width is None) != (dataset.input_height is None):
        raise FormatError(path, where, "input_width and input_height together", "only one")
    attributions = None
    if body.get("attributions") is not None:
        where = "project.attributions"
        section = reader.mapping(body["attributions"], where, _ATTRIBUTION_KEYS)
        attributions = AttributionSpec(
            attribution_method=reader.string(section, "attribution_method", where),
            attribution_strategy=reader.choice(
                section, "attribution_strategy", where, ATTRIBUTION_STRATEGIES, None
            ),
            sources=reader.files(section, "sources", where),
        )
    analyses: list[AnalysisSpec] = []
    raw_analyses = body.get("analyses") or []
    if not isinstance(raw_analyses, list):
        raise FormatError(path, "project.analyses", "a list", _kind(raw_analyses))
    for position, entry in enumerate(raw_analyses):
        where = f"project.analyses[{position}]"
        section = reader.mapping(entry, where, _ANALYSIS_KEYS)
        analyses.append(
            AnalysisSpec(
                analysis_method=reader.string(section, "analysis_method", where),
                sources=reader.files(section, "sources", where),
            )
        )
    return Project(
        name=name,
        model=model,
        model_weights=weights,
        label_map=label_map,
        dataset=dataset,
        attributions=attributions,
        analyses=analyses,
        path=path,
        warnings=reader.warnings,
    )


def _relative(target: Path, base: Path, roots: Sequence[Path]) -> str:
    target = target.resolve()
    if target.is_relative_to(base):
        return target.relative_to(base).as_posix()
    if any(target.is_relative_to(root) for root in roots):
        return str(target)
    raise PathError(f"{target} lies outside the project folder {base}")


def save_project(
    project: Project,
    path: str | os.PathLike[str],
    *,
    allowed_roots: Sequence[str | os.PathLike[str]] = (),
) -> Path:
    """Write ``project`` to ``path`` atomically, with paths relative to the project folder.

    Every referenced path must exist inside the project folder (or an allowed root, which is
    then written as an absolute path); otherwise nothing is written.
    """
    path = Path(path).absolute()
    base = path.parent.resolve()
    roots = [base, *(Path(root).resolve() for root in allowed_roots)]
    for reference in project.referenced_paths():
        # A Project's paths are filesystem paths (relative ones to the working directory),
        # not references relative to the project file.
        resolve_inside(
            Path(reference).absolute(),
            base,
            roots,
            directory=reference == project.dataset.path
            and project.dataset.type == "image_directory",
        )
    dataset = project.dataset
    dataset_section: dict[str, Any] = {
        "name": dataset.name,
        "type": dataset.type,
        "path": _relative(dataset.path, base, roots),
    }
    if dataset.input_width is not None:
        dataset_section["input_width"] = dataset.input_width
        dataset_section["input_height"] = dataset.input_height
    dataset_section["up_sampling_method"] = dataset.up_sampling_method
    dataset_section["down_sampling_method"] = dataset.down_sampling_method
    if dataset.type == "image_directory":
        # ViRelAy reads both regex keys unconditionally for image folders.
        dataset_section["label_index_regex"] = dataset.label_index_regex
        dataset_section["label_word_net_id_regex"] = dataset.label_word_net_id_regex
    body: dict[str, Any] = {
        "name": project.name,
        "model": project.model,
        **(
            {"model_weights": _relative(project.model_weights, base, roots)}
            if project.model_weights is not None
            else {}
        ),
        "label_map": _relative(project.label_map, base, roots),
        "dataset": dataset_section,
    }
    if project.attributions is not None:
        body["attributions"] = {
            "attribution_method": project.attributions.attribution_method,
            "attribution_strategy": project.attributions.attribution_strategy,
            "sources": [_relative(p, base, roots) for p in project.attributions.sources],
        }
    if project.analyses:
        body["analyses"] = [
            {
                "analysis_method": analysis.analysis_method,
                "sources": [_relative(p, base, roots) for p in analysis.sources],
            }
            for analysis in project.analyses
        ]
    text = yaml.safe_dump({"project": body}, sort_keys=False, allow_unicode=True)
    atomic_write_text(path, text)
    project.path = path
    return path
