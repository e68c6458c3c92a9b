"""What ViRelAy 0.6.1 cannot open: each rule of ``relscope.data.virelay`` on a project that
breaks it (tests/app/test_virelay_server.py checks the main ones against the real server)."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from relscope.data.analysis_db import AnalysisWriter
from relscope.data.check import check_project
from relscope.data.dataset import write_hdf5_dataset
from relscope.data.labels import LabelMap, save_label_map
from relscope.data.project import AnalysisSpec, DatasetSpec, Project, load_project, save_project
from relscope.data.virelay import check_virelay
from support.projects import CLASSES, make_project_folder, spray_category


def warnings_of(project: Path) -> list[str]:
    report = check_project(project)
    assert report.ok, report.errors
    return [f"{w.where}: {w.message}" for w in report.warnings]


def fact(project: Path) -> str:
    return dict(check_project(project).facts)["ViRelAy 0.6.1"]


def test_a_relscope_project_opens_in_virelay(tmp_path: Path) -> None:
    project = make_project_folder(tmp_path)
    assert warnings_of(project) == []
    assert fact(project) == "opens it"


def test_nested_files_and_names_with_a_dash(tmp_path: Path) -> None:
    project = make_project_folder(tmp_path, layout="nested")
    analysis = tmp_path / "analysis.h5"
    with AnalysisWriter(analysis, "spray-abs", layout="nested") as writer:
        points = np.ones((12, 2))
        index, clusters = np.arange(0, 36, 3), np.zeros(12, int)
        writer.write(spray_category(0, index, points, points, np.ones(2), clusters, tau=1.0,
                                    eigengap=0.1))  # fmt: skip
    loaded = load_project(project)
    loaded.analyses.append(AnalysisSpec("spray-abs", [analysis]))
    save_project(loaded, project)
    found = warnings_of(project)
    assert len(found) == 3, found
    assert found[0].startswith("analyses[0] analysis.h5: ViRelAy 0.6.1 reads one analysis per file")
    assert "not this nested file with 2 analyses" in found[0]
    assert found[1].startswith("analyses[1]: ViRelAy 0.6.1 turns '-' into '_'")
    assert "(name it 'spray_abs')" in found[1]
    assert fact(project) == "cannot open all of it (see the warnings)"


def test_categories_virelay_cannot_show(tmp_path: Path) -> None:
    project = make_project_folder(tmp_path)
    with h5py.File(tmp_path / "analysis.h5", "a") as handle:
        del handle["00000002/embedding/tsne"]
        del handle["00000001/cluster"]  # relscope reads it (no clusterings), ViRelAy cannot
    found = warnings_of(project)
    assert any(
        "needs a cluster and an embedding group in every category; 00000001 (dog) lack one" in w
        for w in found
    ), found
    assert any(
        "the first, 00000000 (cat), and answers 404 where one is missing: "
        "00000002 (horse) lacks tsne" in w
        for w in found
    ), found


def test_an_empty_first_analysis_file(tmp_path: Path) -> None:
    project = make_project_folder(tmp_path)
    empty = tmp_path / "empty.h5"
    AnalysisWriter(empty, "spray").close()
    loaded = load_project(project)
    loaded.analyses[0].sources.insert(0, empty)
    save_project(loaded, project)
    assert warnings_of(project) == [
        "analyses[0] empty.h5: ViRelAy 0.6.1 fails on the whole project when a file holds no "
        "category"
    ]


def test_label_map_without_word_net_ids(tmp_path: Path) -> None:
    project = make_project_folder(tmp_path)
    (tmp_path / "labels.json").write_text(
        json.dumps([{"index": i, "name": name} for i, name in enumerate(CLASSES)])
    )
    [found] = warnings_of(project)
    assert found.startswith("label_map: ViRelAy 0.6.1 cannot load a label map with entries")


def test_per_sample_groups_virelay_reads_differently(tmp_path: Path) -> None:
    project = make_project_folder(tmp_path)
    with h5py.File(tmp_path / "dataset.h5", "r") as handle:
        images, labels = handle["data"][()], handle["label"][()]
    ids = [f"s{i:02d}" for i in range(len(labels))]
    write_hdf5_dataset(
        tmp_path / "dataset.h5",
        dict(zip(ids, images, strict=True)),
        dict(zip(ids, labels, strict=True)),
    )
    [found] = warnings_of(project)
    assert found.startswith("dataset.label: ViRelAy 0.6.1 reads a per-sample class index only")
    assert "holds int64 (s00, s01, s02 and 33 more)" in found
    # Positions other than the id order: ViRelAy numbers the samples by id.
    reversed_ids = list(reversed(ids))
    write_hdf5_dataset(
        tmp_path / "dataset.h5",
        dict(zip(reversed_ids, images, strict=True)),
        {key: np.uint16(label) for key, label in zip(reversed_ids, labels, strict=True)},
        index={key: position for position, key in enumerate(reversed_ids)},
    )
    found = check_virelay(load_project(project)).problems
    assert [where for where, _ in found] == ["dataset.label", "dataset.index"]


def test_image_folders_need_the_keys_virelay_reads(tmp_path: Path) -> None:
    (tmp_path / "images" / "cat").mkdir(parents=True)
    labels = save_label_map(LabelMap.from_names(["cat"]), tmp_path / "labels.json")
    project = Project(
        "folder", "m:f", labels, DatasetSpec("images", "image_directory", tmp_path / "images")
    )
    problems = [message for _, message in check_virelay(project).problems]
    assert problems == [
        "ViRelAy 0.6.1 needs label_index_regex or label_word_net_id_regex for an image folder "
        "(it reads the class from each file's path with it)",
        "ViRelAy 0.6.1 needs input_width and input_height for an image folder",
    ]


@pytest.mark.parametrize(("channels", "note"), [(3, False), (1, True), (4, True)])
def test_pictures_virelay_cannot_draw_are_a_note(tmp_path: Path, channels: int, note: bool):
    project = make_project_folder(tmp_path)
    with h5py.File(tmp_path / "dataset.h5", "a") as handle:
        data = handle["data"][()]
        del handle["data"]
        handle["data"] = np.resize(data, (len(data), channels, 8, 8))
    summary = fact(project)
    assert warnings_of(project) == []
    if note:
        assert summary == (
            f"opens it; it cannot draw these images ({channels} x 8 x 8): it draws 3 x H x W, so "
            "some of its picture requests answer 500 (a ViRelAy bug)"
        )
    else:
        assert summary == "opens it"
