"""What ViRelAy 0.6.1's server needs of a project, beyond what relscope itself reads.

relscope reads more than ViRelAy does, so a project relscope accepts may still fail in the
viewer. :func:`check_virelay` lists what would stop ViRelAy 0.6.1 from loading a project or
make its server answer an error for part of it, for ``relscope validate``. The rules come
from ViRelAy 0.6.1's server (``virelay/model.py`` and ``virelay/server.py``):

- The label map is read with ``entry["word_net_id"]``: the key must be on every entry.
- An image folder needs exactly one of ``label_index_regex`` and ``label_word_net_id_regex``,
  and ``input_width`` and ``input_height``.
- Per-sample HDF5 labels (``label/<id>``) are class indices only as ``uint16`` scalars (else
  boolean vectors), and per-sample data is taken in id order: the ``index`` group is ignored.
- Every top-level key of an analysis file is a category with ``cluster`` and ``embedding``
  groups, so the nested layout fails. The clusterings and embeddings offered for every
  category are those of the first category of the analysis's first file, which must exist.
- Analysis URLs have ``-`` turned into ``_`` before the name is looked up, so a name with a
  ``-`` is never found.
- Pictures are drawn with the smallest axis taken as the channel axis, and only 3-channel
  arrays draw in every colour map; 1-channel images fail in ViRelAy itself (a ViRelAy bug,
  reported as a note rather than a warning).

Files that do not open are skipped here: relscope's own checks report them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import h5py
import numpy as np

from relscope.data.analysis_db import AnalysisDatabase
from relscope.data.labels import LabelMap, describe_category
from relscope.data.project import AnalysisSpec, DatasetSpec, Project
from relscope.errors import RelscopeError

__all__ = ["VIRELAY", "VirelayCheck", "check_virelay"]

#: The ViRelAy release these rules describe.
VIRELAY = "ViRelAy 0.6.1"
_SHOWN = 3  # examples named per finding
# Per-sample labels checked: writers store them all alike, and a million look-ups take long.
_LABELS_CHECKED = 1000

T = TypeVar("T")


@dataclass
class VirelayCheck:
    """Result of :func:`check_virelay`.

    ``problems`` are ``(where, message)`` pairs of things that make ViRelAy fail on the
    project; ``notes`` are ViRelAy failures the project cannot avoid (its own bugs).
    """

    problems: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def summary(self) -> str:
        """One line for a report: whether ViRelAy opens the project."""
        if self.problems:
            return "cannot open all of it (see the warnings)"
        return "; ".join(["opens it", *self.notes])

    def problem(self, where: str, message: str) -> None:
        self.problems.append((where, f"{VIRELAY} {message}"))


def check_virelay(project: Project, labels: LabelMap | None = None) -> VirelayCheck:
    """Check ``project``'s files against what ViRelAy 0.6.1's server reads.

    ``labels`` (the loaded label map, if it loads) puts class names beside category keys.
    """
    check = VirelayCheck()
    _check_label_map(check, project.label_map)
    shapes: dict[str, tuple[int, ...] | None] = {}
    if project.dataset.type == "hdf5":
        shapes["images"] = _quietly(_check_hdf5_dataset, check, project.dataset.path)
    else:
        _check_image_folder(check, project.dataset)
    if project.attributions is not None and project.attributions.sources:
        shapes["heatmaps"] = _quietly(_attribution_shape, project.attributions.sources[0])
    undrawable = [
        f"{what} ({' x '.join(map(str, shape))})"
        for what, shape in shapes.items()
        if shape is not None and not _drawable(shape)
    ]
    if undrawable:
        check.notes.append(
            f"it cannot draw these {' and '.join(undrawable)}: it draws 3 x H x W, so some of "
            "its picture requests answer 500 (a ViRelAy bug)"
        )
    for position, spec in enumerate(project.analyses):
        _check_analysis(check, position, spec, labels)
    return check


def _quietly(action: Callable[..., T], *args: object) -> T | None:
    """``action(*args)``, or None for a file that does not open (relscope reports it)."""
    try:
        return action(*args)
    except (OSError, ValueError, KeyError, TypeError, RelscopeError):
        return None


def _drawable(shape: tuple[int, ...]) -> bool:
    # ViRelAy moves the smallest axis last and hands the array to PIL as an RGB picture.
    return len(shape) == 3 and shape[0] == 3 and int(np.argmin(shape)) == 0


def _some(items: Iterable[str]) -> str:
    items = list(items)
    more = f" and {len(items) - _SHOWN} more" if len(items) > _SHOWN else ""
    return ", ".join(items[:_SHOWN]) + more


def _check_label_map(check: VirelayCheck, path: Path) -> None:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    if not isinstance(document, list):
        return
    lacking = [
        f"[{position}]"
        for position, entry in enumerate(document)
        if isinstance(entry, dict) and "word_net_id" not in entry
    ]
    if lacking:
        check.problem(
            "label_map",
            f"cannot load a label map with entries lacking the word_net_id key ({_some(lacking)}"
            "); relscope writes the key, empty when a class has none",
        )


def _check_image_folder(check: VirelayCheck, spec: DatasetSpec) -> None:
    if spec.label_index_regex is None and spec.label_word_net_id_regex is None:
        check.problem(
            "dataset",
            "needs label_index_regex or label_word_net_id_regex for an image folder (it reads "
            "the class from each file's path with it)",
        )
    if spec.input_width is None:
        check.problem("dataset", "needs input_width and input_height for an image folder")


def _check_hdf5_dataset(check: VirelayCheck, path: Path) -> tuple[int, ...] | None:
    """Check per-sample groups; return the shape of the first image."""
    with h5py.File(path, "r") as handle:
        data, labels = handle["data"], handle["label"]
        if isinstance(data, h5py.Dataset):
            return tuple(data.shape[1:])
        ids = list(data.keys())
        if isinstance(labels, h5py.Group):
            unreadable = [
                key
                for key in ids[:_LABELS_CHECKED]
                if key in labels
                and not (labels[key].shape == () and labels[key].dtype == np.uint16)
                and labels[key].dtype != np.bool_
            ]
            if unreadable:
                dtype = labels[unreadable[0]].dtype
                check.problem(
                    "dataset.label",
                    f"reads a per-sample class index only as a uint16 scalar; label/<id> holds "
                    f"{dtype} ({_some(unreadable)}), and it answers 404 for those samples",
                )
        if "index" in handle and isinstance(handle["index"], h5py.Group):
            index = handle["index"]
            by_position = sorted(ids, key=lambda key: int(index[key][()]) if key in index else -1)
            if by_position != ids:
                check.problem(
                    "dataset.index",
                    "ignores the index group and numbers the samples in id order, so its sample "
                    "numbers are not the attributions' (write the ids in index order)",
                )
        return tuple(data[ids[0]].shape) if ids else None


def _attribution_shape(path: Path) -> tuple[int, ...] | None:
    with h5py.File(path, "r") as handle:
        attribution = handle["attribution"]
        if isinstance(attribution, h5py.Dataset):
            return tuple(attribution.shape[1:])
        keys = list(attribution.keys())
        return tuple(attribution[keys[0]].shape) if keys else None


def _check_analysis(
    check: VirelayCheck, position: int, spec: AnalysisSpec, labels: LabelMap | None
) -> None:
    name = spec.analysis_method
    if "-" in name:
        check.problem(
            f"analyses[{position}]",
            f"turns '-' into '_' in its analysis URLs, so it never finds the analysis {name!r} "
            f"(name it {name.replace('-', '_')!r})",
        )
    # Per category, the clusterings and embeddings of all files; ViRelAy offers those of the
    # first category of the first file.
    contents: dict[str, tuple[set[str], set[str]]] = {}
    first: str | None = None
    for number, source in enumerate(spec.sources):
        where = f"analyses[{position}] {source.name}"
        layout = _quietly(_layout, source, name)
        if layout is None:
            continue
        held, analyses = layout
        if held == "nested" and analyses:
            several = f" with {len(analyses)} analyses" if len(analyses) > 1 else ""
            check.problem(
                where,
                f"reads one analysis per file with the categories at the top level, not this "
                f"nested file{several} (<analysis>/<category>/...); write it in the ViRelAy "
                "layout, relscope's default",
            )
            continue
        found = _quietly(_categories, source)
        if found is None:
            continue
        if number == 0:
            if not found:
                check.problem(where, "fails on the whole project when a file holds no category")
            first = next(iter(found), None)
        incomplete = [key for key, parts in found.items() if parts is None]
        if incomplete:
            shown = _some(describe_category(key, labels) for key in incomplete)
            check.problem(
                where,
                f"needs a cluster and an embedding group in every category; {shown} lack one",
            )
        for key, parts in found.items():
            if parts is not None:
                clusterings, embeddings = contents.setdefault(key, (set(), set()))
                clusterings |= parts[0]
                embeddings |= parts[1]
    if first is not None and first in contents:
        _check_offered(check, position, first, contents, labels)


def _layout(source: Path, name: str) -> tuple[str, list[str]]:
    with AnalysisDatabase(source, default_analysis=name) as database:
        return database.layout, database.analyses


def _categories(source: Path) -> dict[str, tuple[set[str], set[str]] | None]:
    """Top-level keys in ViRelAy's order, with their clusterings and embeddings (None if a
    group is missing)."""
    result: dict[str, tuple[set[str], set[str]] | None] = {}
    with h5py.File(source, "r") as handle:
        for key in handle:
            group = handle[key]
            groups = [group.get(part) for part in ("cluster", "embedding")]
            if not all(isinstance(part, h5py.Group) for part in groups):
                result[key] = None
                continue
            result[key] = (set(groups[0].keys()), set(groups[1].keys()))
    return result


def _check_offered(
    check: VirelayCheck,
    position: int,
    first: str,
    contents: dict[str, tuple[set[str], set[str]]],
    labels: LabelMap | None,
) -> None:
    offered_clusterings, offered_embeddings = contents[first]
    lacking = []
    for key, (clusterings, embeddings) in contents.items():
        missing = sorted(offered_clusterings - clusterings) + sorted(
            offered_embeddings - embeddings
        )
        if missing:
            lacking.append(f"{describe_category(key, labels)} lacks {', '.join(missing)}")
    if lacking:
        check.problem(
            f"analyses[{position}]",
            f"offers every category the clusterings and embeddings of the first, "
            f"{describe_category(first, labels)}, and answers 404 where one is missing: "
            + "; ".join(lacking[:_SHOWN])
            + (f"; and {len(lacking) - _SHOWN} more" if len(lacking) > _SHOWN else ""),
        )
