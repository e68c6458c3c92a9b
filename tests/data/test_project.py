"""Project files: round trips, hostile YAML, path containment, unknown keys, property tests."""

import os
import warnings
from pathlib import Path

import h5py
import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from relscope.data.project import (
    AnalysisSpec,
    AttributionSpec,
    DatasetSpec,
    Project,
    load_project,
    save_project,
)
from relscope.errors import FormatError, PathError, RelscopeError, RelscopeWarning


def make_folder(root: Path) -> dict:
    root.mkdir(parents=True, exist_ok=True)
    (root / "labels.json").write_text('[{"index": 0, "name": "a"}]')
    for name in ("dataset.h5", "attr-0.h5", "attr-1.h5", "analysis.h5"):
        with h5py.File(root / name, "w") as handle:
            handle["x"] = np.zeros(1)
    (root / "images" / "a").mkdir(parents=True, exist_ok=True)
    return {
        "project": {
            "name": "demo",
            "model": "pkg.models:small_cnn",
            "label_map": "labels.json",
            "dataset": {
                "name": "digits",
                "type": "hdf5",
                "path": "dataset.h5",
                "input_width": 28,
                "input_height": 28,
                "up_sampling_method": "none",
                "down_sampling_method": "none",
            },
            "attributions": {
                "attribution_method": "epsilon_gamma_box",
                "attribution_strategy": "true_label",
                "sources": ["attr-0.h5", "attr-1.h5"],
            },
            "analyses": [{"analysis_method": "spray", "sources": ["analysis.h5"]}],
        }
    }


def write_doc(root: Path, document, name="project.yaml") -> Path:
    path = root / name
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def test_load_resolves_paths_and_types(tmp_path):
    path = write_doc(tmp_path, make_folder(tmp_path))
    project = load_project(path)
    assert project.name == "demo"
    assert project.model == "pkg.models:small_cnn"
    assert project.label_map == (tmp_path / "labels.json").resolve()
    assert project.dataset == DatasetSpec(
        "digits", "hdf5", (tmp_path / "dataset.h5").resolve(), 28, 28, "none", "none"
    )
    assert project.attributions == AttributionSpec(
        "epsilon_gamma_box",
        "true_label",
        [(tmp_path / "attr-0.h5").resolve(), (tmp_path / "attr-1.h5").resolve()],
    )
    assert project.analyses == [AnalysisSpec("spray", [(tmp_path / "analysis.h5").resolve()])]
    assert project.warnings == []
    assert project.root == tmp_path.resolve()


def test_round_trip_writes_relative_paths(tmp_path):
    document = make_folder(tmp_path / "p")
    project = load_project(write_doc(tmp_path / "p", document))
    out = save_project(project, tmp_path / "p" / "copy.yaml")
    assert yaml.safe_load(out.read_text()) == document
    again = load_project(out)
    assert again.dataset == project.dataset
    assert again.attributions == project.attributions
    assert again.analyses == project.analyses


def test_model_weights_extra_round_trips_and_must_exist_inside(tmp_path):
    document = make_folder(tmp_path / "p")
    (tmp_path / "p" / "model.pt").write_bytes(b"weights")
    body = {**document["project"], "model_weights": "model.pt"}
    project = load_project(write_doc(tmp_path / "p", {"project": body}))
    assert project.warnings == []  # a known relscope extra, not an unknown key
    assert project.model_weights == (tmp_path / "p" / "model.pt").resolve()
    out = save_project(project, tmp_path / "p" / "copy.yaml")
    assert yaml.safe_load(out.read_text())["project"]["model_weights"] == "model.pt"
    assert load_project(out).model_weights == project.model_weights
    body["model_weights"] = "../outside.pt"
    (tmp_path / "outside.pt").write_bytes(b"weights")
    with pytest.raises(PathError, match=r"project\.model_weights"):
        load_project(write_doc(tmp_path / "p", {"project": body}))
    body["model_weights"] = "missing.pt"
    with pytest.raises(PathError, match=r"project\.model_weights"):
        load_project(write_doc(tmp_path / "p", {"project": body}))


def test_minimal_project_and_image_directory(tmp_path):
    document = make_folder(tmp_path)
    body = document["project"]
    del body["attributions"], body["analyses"]
    body["dataset"] = {"name": "imgs", "type": "image_directory", "path": "images"}
    project = load_project(write_doc(tmp_path, document))
    assert project.attributions is None
    assert project.analyses == []
    assert project.dataset.path == (tmp_path / "images").resolve()
    saved = yaml.safe_load(save_project(project, tmp_path / "out.yaml").read_text())
    # ViRelAy reads both regex keys of image folders unconditionally.
    assert saved["project"]["dataset"]["label_index_regex"] is None
    assert "label_word_net_id_regex" in saved["project"]["dataset"]


def test_unknown_keys_are_warned_about_and_listed(tmp_path):
    document = make_folder(tmp_path)
    document["project"]["colour"] = "blue"
    document["project"]["dataset"]["shuffle"] = True
    path = write_doc(tmp_path, document)
    with pytest.warns(RelscopeWarning) as record:
        project = load_project(path)
    messages = [str(w.message) for w in record]
    assert any("project.colour: unknown key" in m for m in messages)
    assert any("project.dataset.shuffle: unknown key" in m for m in messages)
    assert len(project.warnings) == 2


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a: &x [1]\nb: *x\n", "aliases are not allowed"),
        (
            "a: &a ['lol','lol']\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
            "c: [*b,*b,*b,*b,*b,*b,*b,*b]\n",
            "aliases are not allowed",
        ),
        ("project: {name: a}\nproject: {name: b}\n", "duplicate key 'project'"),
        ("{1: a}\n", "keys must be strings"),
        ("!!python/object/apply:os.system ['echo hacked']\n", "could not determine a constructor"),
        ("project: [unclosed\n", "valid YAML"),
        ("[" * 5000 + "]" * 5000, "valid YAML"),
        ("- just\n- a list\n", "/: expected a mapping"),
        ("project:\n", "project: expected a mapping"),
    ],
)
def test_hostile_or_malformed_yaml_gives_one_line_format_error(tmp_path, text, message):
    path = tmp_path / "project.yaml"
    path.write_text(text)
    with pytest.raises(FormatError) as info:
        load_project(path)
    assert message in str(info.value)
    assert "\n" not in str(info.value)
    assert not (tmp_path / "hacked").exists()


def test_oversized_and_binary_files(tmp_path):
    big = tmp_path / "big.yaml"
    big.write_text("a: " + "x" * (1024 * 1024 + 1))
    with pytest.raises(FormatError, match="at most 1048576 bytes"):
        load_project(big)
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(FormatError, match="UTF-8"):
        load_project(binary)
    with pytest.raises(FormatError, match="no such file"):
        load_project(tmp_path / "missing.yaml")


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda p: p.pop("name"), r"project\.name: expected a string, found nothing"),
        (lambda p: p.update(model=3), r"project\.model: expected a non-empty string, found int"),
        (lambda p: p.pop("dataset"), r"project\.dataset: expected a mapping"),
        (
            lambda p: p["dataset"].update(type="csv"),
            r"project\.dataset\.type: expected one of hdf5",
        ),
        (
            lambda p: p["dataset"].update(input_width=-3),
            r"input_width: expected a positive integer",
        ),
        (lambda p: p["dataset"].update(input_width=True), r"input_width: expected a positive"),
        (lambda p: p["dataset"].pop("input_height"), "input_width and input_height together"),
        (
            lambda p: p["dataset"].update(up_sampling_method="stretch"),
            "up_sampling_method: expected",
        ),
        (lambda p: p["dataset"].update(down_sampling_method=1), "down_sampling_method: expected"),
        (
            lambda p: p["dataset"].update(label_index_regex="a", label_word_net_id_regex="b"),
            "at most one of label_index_regex",
        ),
        (lambda p: p["attributions"].update(sources=[]), r"sources: expected a non-empty list"),
        (lambda p: p["attributions"].update(sources=[1]), r"sources\[0\]: expected a path string"),
        (lambda p: p["attributions"].update(attribution_strategy="x"), "attribution_strategy"),
        (lambda p: p.update(analyses={"a": 1}), r"project\.analyses: expected a list"),
        (lambda p: p["analyses"].append("spray"), r"analyses\[1\]: expected a mapping"),
    ],
)
def test_bad_values_name_the_key(tmp_path, mutate, message):
    document = make_folder(tmp_path)
    mutate(document["project"])
    with pytest.raises(FormatError, match=message):
        load_project(write_doc(tmp_path, document))


@pytest.mark.parametrize(
    "reference",
    ["../outside.h5", "/etc/passwd", "sub/../../outside.h5", "link-out.h5", "link-dir/outside.h5"],
)
def test_paths_escaping_the_project_folder_are_refused(tmp_path, reference):
    root = tmp_path / "project"
    document = make_folder(root)
    (tmp_path / "outside.h5").write_bytes(b"")
    (root / "sub").mkdir()
    os.symlink(tmp_path / "outside.h5", root / "link-out.h5")
    os.symlink(tmp_path, root / "link-dir")
    document["project"]["dataset"]["path"] = reference
    with pytest.raises(PathError, match=r"project\.dataset\.path: .*outside the project folder"):
        load_project(write_doc(root, document))


def test_allowed_roots_and_missing_files(tmp_path):
    root = tmp_path / "project"
    shared = tmp_path / "shared"
    document = make_folder(root)
    make_folder(shared)
    document["project"]["dataset"]["path"] = str(shared / "dataset.h5")
    path = write_doc(root, document)
    with pytest.raises(PathError, match="outside the project folder"):
        load_project(path)
    project = load_project(path, allowed_roots=[shared])
    assert project.dataset.path == (shared / "dataset.h5").resolve()
    document["project"]["label_map"] = "nope.json"
    with pytest.raises(PathError, match=r"project\.label_map: 'nope\.json': no such file"):
        load_project(write_doc(root, document))


def test_save_refuses_outside_paths_and_writes_nothing(tmp_path):
    root = tmp_path / "p"
    project = load_project(write_doc(root, make_folder(root)))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    with pytest.raises(PathError, match="outside the project folder"):
        save_project(project, elsewhere / "project.yaml")
    assert list(elsewhere.iterdir()) == []
    out = save_project(project, elsewhere / "project.yaml", allowed_roots=[root])
    assert load_project(out, allowed_roots=[root]).dataset == project.dataset


def test_save_accepts_paths_relative_to_the_working_directory(tmp_path, monkeypatch):
    make_folder(tmp_path / "p")
    monkeypatch.chdir(tmp_path)
    project = Project(
        name="x",
        model="m:f",
        label_map=Path("p/labels.json"),
        dataset=DatasetSpec("d", "hdf5", Path("p/dataset.h5")),
    )
    path = save_project(project, Path("p/project.yaml"))
    document = yaml.safe_load(path.read_text())
    assert document["project"]["label_map"] == "labels.json"
    assert load_project(path).dataset.path == (tmp_path / "p" / "dataset.h5").resolve()


def test_save_builds_a_project_from_specs(tmp_path):
    make_folder(tmp_path)
    project = Project(
        name="x",
        model="m:f",
        label_map=tmp_path / "labels.json",
        dataset=DatasetSpec("d", "hdf5", tmp_path / "dataset.h5"),
        attributions=AttributionSpec("lrp", "predicted_label", [tmp_path / "attr-0.h5"]),
    )
    path = save_project(project, tmp_path / "p.yaml")
    document = yaml.safe_load(path.read_text())
    assert document["project"]["attributions"]["sources"] == ["attr-0.h5"]
    assert "analyses" not in document["project"]
    assert project.path == path


_junk = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 5),
    st.floats(allow_nan=True),
    st.text(max_size=12),
    st.lists(st.text(max_size=5), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
    st.sampled_from(["../x", "/etc/passwd", "labels.json", "images", "hdf5", "none"]),
)


def _key_paths(node, prefix=()):
    if isinstance(node, dict):
        for key, value in node.items():
            yield (*prefix, key)
            yield from _key_paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield (*prefix, i)
            yield from _key_paths(value, (*prefix, i))


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_any_mutated_document_loads_or_fails_cleanly(tmp_path, data):
    document = make_folder(tmp_path)
    paths = list(_key_paths(document))
    target = data.draw(st.sampled_from(paths))
    parent = document
    for step in target[:-1]:
        parent = parent[step]
    if data.draw(st.booleans()) and isinstance(parent, dict):
        del parent[target[-1]]
    else:
        parent[target[-1]] = data.draw(_junk)
    path = write_doc(tmp_path, document, "mutated.yaml")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RelscopeWarning)
        try:
            project = load_project(path)
        except RelscopeError as error:
            assert "\n" not in str(error)
            return
    for reference in project.referenced_paths():
        assert reference.is_relative_to(tmp_path.resolve())


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(text=st.text(max_size=200))
def test_any_text_loads_or_fails_cleanly(tmp_path, text):
    path = tmp_path / "random.yaml"
    path.write_text(text, encoding="utf-8")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RelscopeWarning)
        try:
            load_project(path)
        except RelscopeError as error:
            assert "\n" not in str(error)
