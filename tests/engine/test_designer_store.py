"""The designer's configuration store: designs/*.json in the attribution config format."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from engine.designer_models import make_project
from relscope.attribution.config import method_config
from relscope.attribution.lrp.composites import segments
from relscope.attribution.lrp.engine import LRP
from relscope.attribution.lrp.rules import get_rule
from relscope.data.attribution_db import AttributionDatabase
from relscope.data.dataset import open_dataset
from relscope.engine import attribute
from relscope.engine.designer import DesignSession, DesignStore
from relscope.engine.inputs import load_method
from relscope.errors import ConfigError

DESIGN = {
    "segments": [
        {"start": 0, "stop": 1, "rule": "zbox", "params": {"low": 0.0, "high": 1.0}},
        {"start": 1, "stop": 7, "rule": "gamma", "params": {"gamma": 0.25}},
        {"start": 7, "stop": None, "rule": "epsilon", "params": {"eps": 0.1}},
    ]
}
UNIFIED = {
    "segments": [
        {
            "start": 0,
            "stop": None,
            "rule": "unified",
            "params": {"alpha": 2.0, "beta": 1.0, "eps": 1e-6},
        }
    ]
}


def test_designs_round_trip_through_json_files(tmp_path):
    store = DesignStore(tmp_path)
    assert store.list() == []
    created = store.create("mine", DESIGN)
    assert created.name == "mine"
    path = tmp_path / "designs" / "mine.json"
    stored = json.loads(path.read_text(encoding="utf-8"))
    assert stored == {**method_config(DESIGN).to_dict(), "name": "mine"}
    assert method_config(stored) == created == store.get("mine")
    store.create("preset", {"method": "epsilon_plus_flat"})
    store.create("unified", UNIFIED)
    assert store.get("preset").to_dict()["method"] == "epsilon_plus_flat"
    assert store.list() == ["mine", "preset", "unified"]
    assert "mine" in store and "other" not in store and "../x" not in store

    copy = store.duplicate("mine", "copy")
    assert copy.to_dict() == {**created.to_dict(), "name": "copy"}
    renamed = store.rename("copy", "moved")
    assert renamed.name == "moved"
    assert json.loads((tmp_path / "designs" / "moved.json").read_text())["name"] == "moved"
    assert store.list() == ["mine", "moved", "preset", "unified"]

    changed = store.save("mine", {**DESIGN, "segments": DESIGN["segments"][1:]})
    assert len(changed.segments) == 2 and len(store.get("mine").segments) == 2
    store.delete("moved")
    assert store.list() == ["mine", "preset", "unified"]
    assert not list((tmp_path / "designs").glob(".*"))  # no temporary files left


def test_a_stored_design_runs_as_attribute_method_unchanged(tmp_path):
    """A design saved through the store, read as ``--method designs/x.json`` (load_method)
    and run by the engine's attribute job, gives LRP's relevance with the same segments."""
    project, images, labels = make_project(tmp_path)
    session = DesignSession.from_project(project)
    store = DesignStore(tmp_path, session=session)
    store.create("x", DESIGN)
    config = load_method(str(tmp_path / "designs" / "x.json"))
    assert config == store.get("x")

    composite = segments(
        (s["start"], s["stop"], get_rule(s["rule"], **s["params"])) for s in DESIGN["segments"]
    )
    x = torch.as_tensor(images[:4])
    target = torch.as_tensor(labels[:4])
    expected = LRP(session.model, composite)(x, target).relevance
    direct = config.attributor()(session.model, x, target).relevance
    assert torch.allclose(direct, expected, atol=1e-6)
    assert torch.allclose(
        config.attributor()(session.model, session.sample(2), torch.tensor([labels[2]])).relevance,
        expected[2:3],
        atol=1e-6,
    )

    out = tmp_path / "attributions.h5"
    attribute(open_dataset(tmp_path / "data.h5"), session.model, config, out, batch_size=3)
    with AttributionDatabase(out) as database:
        relevance, _, _ = database.read(np.arange(4))
    assert np.allclose(relevance, expected.numpy(), atol=1e-6)


@pytest.mark.parametrize(
    "name",
    ["", "../x", "a/b", "a\\b", "..", ".hidden", "a..b", "x" * 65, "a b", "é", "end.", None, 3],
)
def test_unsafe_names_are_refused(tmp_path, name):
    store = DesignStore(tmp_path)
    with pytest.raises(ConfigError, match="design name") as error:
        store.create(name, DESIGN)
    assert "\n" not in str(error.value)
    assert not (tmp_path / "designs").exists() or not list((tmp_path / "designs").iterdir())
    store.create("ok", DESIGN)
    for call in (
        lambda: store.get(name),
        lambda: store.rename("ok", name),
        lambda: store.duplicate("ok", name),
        lambda: store.delete(name),
        lambda: store.save(name, DESIGN),
    ):
        with pytest.raises(ConfigError, match="design name"):
            call()
    assert store.list() == ["ok"]


def test_existing_names_are_kept_unless_overwrite(tmp_path):
    store = DesignStore(tmp_path)
    store.create("a", DESIGN)
    store.create("b", {"method": "epsilon"})
    for call in (
        lambda: store.create("a", UNIFIED),
        lambda: store.rename("b", "a"),
        lambda: store.duplicate("b", "a"),
    ):
        with pytest.raises(ConfigError, match="a design named 'a' exists already"):
            call()
    assert store.get("a") == method_config({**DESIGN, "name": "a"})
    store.duplicate("b", "a", overwrite=True)
    assert store.get("a").method == "epsilon"
    store.rename("b", "a", overwrite=True)
    assert store.list() == ["a"]
    store.create("a", UNIFIED, overwrite=True)
    assert store.get("a").segments[0].rule == "unified"


def test_missing_designs_are_config_errors(tmp_path):
    store = DesignStore(tmp_path)
    for call in (
        lambda: store.get("nope"),
        lambda: store.rename("nope", "other"),
        lambda: store.duplicate("nope", "other"),
        lambda: store.delete("nope"),
    ):
        with pytest.raises(ConfigError, match="no design named 'nope'"):
            call()


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"segments": [{"start": 0, "stop": 2, "rule": "nonsense"}]},
         r"segments\[0\]: unknown rule"),
        ({"segments": [{"start": 0, "stop": 2, "rule": "epsilon", "params": {"eps": "a"}}]},
         r"segments\[0\]"),
        ({"segments": [{"start": 3, "stop": 2, "rule": "epsilon"}]}, r"segments\[0\]: 'stop'"),
        ({"segments": []}, "'segments' is empty"),
        ({"method": "nonsense"}, "unknown method"),
        ({"method": "epsilon", "extra": 1}, "unknown key"),
        ({"method": "epsilon", "params": {"eps": float("nan")}}, "eps must be a finite number"),
        ({"segments": [{"start": 0, "rule": "epsilon", "params": {"eps": -1.0}}]},
         r"segments\[0\]: .*eps"),
    ],
)  # fmt: skip
def test_invalid_configurations_are_refused_naming_the_field(tmp_path, config, message):
    store = DesignStore(tmp_path)
    with pytest.raises(ConfigError, match=message) as error:
        store.create("bad", config)
    assert "\n" not in str(error.value)
    assert store.list() == []


def test_segment_ranges_are_checked_against_the_sessions_layers(tmp_path):
    project, _, _ = make_project(tmp_path)
    session = DesignSession.from_project(project)
    count = len(session.layers())
    store = DesignStore(tmp_path, session=session)
    past_start = {"segments": [{"start": count, "stop": None, "rule": "epsilon"}]}
    past_stop = {"segments": [{"start": 0, "stop": count + 1, "rule": "epsilon"}]}
    with pytest.raises(ConfigError, match=rf"segments\[0\]: 'start' {count} is past the last"):
        store.create("late", past_start)
    with pytest.raises(ConfigError, match=rf"segments\[0\]: 'stop' {count + 1} is past the end"):
        store.save("long", past_stop)
    assert store.list() == []
    store.create("fits", {"segments": [{"start": count - 1, "stop": count, "rule": "epsilon"}]})
    DesignStore(tmp_path).create("late", past_start)  # without a session: not checked


def test_corrupt_files_are_reported(tmp_path):
    store = DesignStore(tmp_path)
    store.create("a", DESIGN)
    (tmp_path / "designs" / "a.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"design 'a': .* is not valid JSON"):
        store.get("a")
    (tmp_path / "designs" / "a.json").write_text('{"method": "nonsense"}', encoding="utf-8")
    with pytest.raises(ConfigError, match="design 'a': attribution configuration"):
        store.get("a")
    (tmp_path / "designs" / "bad name.json").write_text("{}", encoding="utf-8")
    assert store.list() == ["a"]
