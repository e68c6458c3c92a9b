"""Project folders laid out exactly as ViRelAy's own example scripts write them.

Only h5py, json, yaml, numpy and PIL are used, never relscope's writers, so the files are an
independent check of the readers. The layout follows the scripts of the ViRelAy repository
(github.com/virelay/virelay):

``docs/examples/test-project/make_test_data.py``
    Dataset ``input.h5``: resizable, gzip-compressed, chunked ``data`` (float32
    ``N x C x H x W``, uniform in [0, 1]) and ``label`` (uint16 ``N``), appended class by class.
    Attribution ``attribution.h5``: ``attribution`` (float32, uniform in [-1, 1]),
    ``prediction`` (float32 ``N x classes``) and ``label`` (uint16) in the same way, and no
    ``index`` dataset (rows are dataset positions). Label map: ``json.dump`` of
    ``{"index", "word_net_id", "name"}`` objects.
``docs/examples/meta_analysis.py``
    Analysis ``analysis.h5``: truncated, then one top-level group per class (named by the
    class's WordNet id from the label map, else ``%08d``) appended in ``"a"`` mode, with
    ``index`` (uint32, rows of the attribution file whose label is the class),
    ``embedding/spectral`` (float32, attribute ``eigenvalue``), ``embedding/tsne`` and
    ``embedding/umap`` (float32 ``n x 2``, attributes ``embedding="spectral"`` and
    ``index=[0, 1]``), ``cluster/kmeans-NN`` (int32, attributes ``embedding``, ``k``,
    ``index``), ``cluster/dbscan-eps=X.X`` and ``cluster/hdbscan`` (int64 with ``-1`` noise,
    no ``k``), ``cluster/agglomerative-NN`` (int64 with ``k``) and, when the attribution file
    has a boolean ``train`` dataset, ``cluster/train_split``.
``docs/examples/make_project.py``
    ``project.yaml``: ``yaml.dump(..., default_flow_style=False)`` (keys sorted), paths
    relative to the YAML file, ``attribution_strategy: true_label``, ``type: hdf5``, and
    ``input_width = data.shape[2]``, ``input_height = data.shape[3]`` (the script's order,
    so for non-square images the two are swapped; ViRelAy ignores them for HDF5 datasets).

The ``image_directory`` variant follows ViRelAy's project file format documentation
(``docs/source/contributors-guide/project-file-format.rst``) and its server
(``source/backend/virelay/model.py``): one sub-folder per class, both regex keys present
(ViRelAy reads both and needs exactly one set), and the regex matched with ``re.match``
against ``<project folder>/<dataset path>/<file>``, so it starts with ``.*/``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import h5py
import numpy as np
import yaml
from PIL import Image

__all__ = ["ANALYSIS", "HEIGHT", "WIDTH", "make_virelay_project", "word_net_id"]

HEIGHT, WIDTH = 8, 12  # not square, so a swapped axis shows
CHANNELS = 3
EIGENVALUES = 4
CLUSTER_COUNTS = (2, 3)  # meta_analysis.py's --number-of-clusters-list
# The names make_project.py is given in ViRelAy's example-project guide.
ANALYSIS = "Spectral Analysis"
# The class folder (named by WordNet id) of <project folder>/images/<class>/<file>.
WNID_REGEX = r".*/([^/]+)/[^/]+$"


def word_net_id(index: int) -> str:
    """The WordNet-style id the label map gives class ``index``."""
    return f"n{index + 1:08d}"


def _append(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Append rows to resizable, chunked, gzip datasets, creating the file on first use."""
    if not path.exists():
        with h5py.File(path, "w") as handle:
            for key, rows in arrays.items():
                handle.create_dataset(
                    key,
                    shape=(0, *rows.shape[1:]),
                    dtype=rows.dtype,
                    maxshape=(None, *rows.shape[1:]),
                    chunks=True,
                    compression="gzip",
                )
    with h5py.File(path, "a") as handle:
        for key, rows in arrays.items():
            dataset = handle[key]
            start = dataset.shape[0]
            dataset.resize(start + len(rows), axis=0)
            dataset[start:] = rows


def _write_analysis(
    path: Path, attribution: Path, label_map: Path, rng: np.random.Generator
) -> None:
    with open(label_map, encoding="utf-8") as file:
        entries = json.load(file)
    wnids = {entry["index"]: entry["word_net_id"] for entry in entries}
    with h5py.File(attribution, "r") as handle:
        labels = handle["label"][:]
        train = handle["train"][:] if "train" in handle else None
    h5py.File(path, "w").close()
    for class_index in [int(entry["index"]) for entry in entries]:
        (members,) = np.nonzero(labels == class_index)
        n = len(members)
        eigenvalues = np.sort(rng.random(EIGENVALUES))
        spectral = rng.normal(size=(n, EIGENVALUES))
        with h5py.File(path, "a") as handle:
            group = handle.require_group(wnids.get(class_index, f"{class_index:08d}"))
            group["index"] = members.astype("uint32")
            embedding = group.require_group("embedding")
            embedding["spectral"] = spectral.astype(np.float32)
            embedding["spectral"].attrs["eigenvalue"] = eigenvalues.astype(np.float32)
            for name in ("tsne", "umap"):
                embedding[name] = rng.normal(size=(n, 2)).astype(np.float32)
                embedding[name].attrs["embedding"] = "spectral"
                embedding[name].attrs["index"] = np.array([0, 1])
            cluster = group.require_group("cluster")
            dims = np.arange(EIGENVALUES, dtype=np.uint32)
            labelled = {}
            for k in CLUSTER_COUNTS:
                # scikit-learn's KMeans gives int32 labels, the other methods int64.
                labelled[f"kmeans-{k:02d}"] = (rng.integers(0, k, n).astype(np.int32), k)
                labelled[f"dbscan-eps={k / 10:.1f}"] = (rng.integers(-1, k, n), None)
            labelled["hdbscan"] = (rng.integers(-1, 2, n), None)
            for k in CLUSTER_COUNTS:
                labelled[f"agglomerative-{k:02d}"] = (rng.integers(0, k, n), k)
            for name, (values, k) in labelled.items():
                cluster[name] = values
                cluster[name].attrs["embedding"] = "spectral"
                if k is not None:
                    cluster[name].attrs["k"] = k
                cluster[name].attrs["index"] = dims
            if train is not None:
                cluster["train_split"] = train[members.tolist()]


def make_virelay_project(
    root: Path,
    *,
    n: int = 30,
    classes: Sequence[str] = ("cat", "dog", "horse"),
    seed: int = 0,
    dataset_type: Literal["hdf5", "image_directory"] = "hdf5",
    train_split: bool = False,
    word_net_ids: Sequence[str] | None = None,
) -> Path:
    """Write a complete ViRelAy project into ``root`` and return its ``project.yaml``.

    The ``n`` samples are split into contiguous class blocks (``np.array_split``), written
    class by class as ``make_test_data.py`` does. With ``train_split`` the attribution file
    gets the boolean ``train`` dataset that ``meta_analysis.py`` turns into
    ``cluster/train_split``. ``word_net_ids`` default to :func:`word_net_id`;
    ``make_test_data.py`` itself uses ``f"{index:08d}"``. Files: ``label-map.json``,
    ``input.h5`` or ``images/<WordNet id>/<position>.png``, ``attribution.h5``,
    ``analysis.h5``, ``project.yaml``.
    """
    wnids = [word_net_id(i) for i in range(len(classes))] if word_net_ids is None else word_net_ids
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    label_map = root / "label-map.json"
    entries = [
        {"index": i, "word_net_id": wnid, "name": name}
        for i, (wnid, name) in enumerate(zip(wnids, classes, strict=True))
    ]
    with open(label_map, "w", encoding="utf-8") as file:
        json.dump(entries, file)
    dataset = root / ("input.h5" if dataset_type == "hdf5" else "images")
    attribution = root / "attribution.h5"
    position = 0
    sizes = [len(block) for block in np.array_split(np.arange(n), len(classes))]
    for class_index, size in enumerate(sizes):
        labels = np.full(size, class_index, dtype=np.uint16)
        if dataset_type == "hdf5":
            samples = rng.uniform(0, 1, size=(size, CHANNELS, HEIGHT, WIDTH))
            _append(dataset, {"data": samples.astype(np.float32), "label": labels})
        else:
            folder = dataset / wnids[class_index]
            folder.mkdir(parents=True, exist_ok=True)
            for _ in range(size):
                pixels = rng.integers(0, 256, size=(HEIGHT, WIDTH, CHANNELS), dtype=np.uint8)
                Image.fromarray(pixels).save(folder / f"{position:05d}.png")
                position += 1
        rows = {
            "attribution": rng.uniform(-1, 1, size=(size, CHANNELS, HEIGHT, WIDTH)).astype(
                np.float32
            ),
            "prediction": rng.uniform(0, 1, size=(size, len(classes))).astype(np.float32),
            "label": labels,
        }
        if train_split:
            rows["train"] = rng.random(size) < 0.5
        _append(attribution, rows)
    analysis = root / "analysis.h5"
    _write_analysis(analysis, attribution, label_map, rng)

    project_file = root / "project.yaml"
    section = {"name": "Random Data", "type": dataset_type, "path": _relative(dataset, root)}
    if dataset_type == "hdf5":
        with h5py.File(dataset, "r") as handle:
            shape = handle["data"].shape
        section.update(input_width=shape[2], input_height=shape[3])
    else:
        section.update(
            input_width=WIDTH,
            input_height=HEIGHT,
            label_index_regex=None,
            label_word_net_id_regex=WNID_REGEX,
        )
    section.update(down_sampling_method="none", up_sampling_method="none")
    project = {
        "project": {
            "name": "Test Project",
            "model": "No Model",
            "label_map": _relative(label_map, root),
            "dataset": section,
            "attributions": {
                "attribution_method": "Random Attribution",
                "attribution_strategy": "true_label",
                "sources": [_relative(attribution, root)],
            },
            "analyses": [{"analysis_method": ANALYSIS, "sources": [_relative(analysis, root)]}],
        }
    }
    with open(project_file, "w", encoding="utf-8") as file:
        yaml.dump(project, file, default_flow_style=False)
    return project_file


def _relative(path: Path, root: Path) -> str:
    return os.path.relpath(path, start=root)
