"""``--engine ray`` on the command line (attribute, analyze, run) against a real local Ray:
the same rows and analyses as the local engine, the project listing the shards, and one
line saying how to install Ray where it is missing."""

from __future__ import annotations

import sys

import pytest
from typer.testing import CliRunner

from engine.test_analysis import PIPELINE, assert_same
from engine.test_ray import assert_same_rows
from relscope.cli.main import app
from support.engine_inputs import random_inputs

runner = CliRunner()


@pytest.fixture
def images_and_model(tmp_path):
    data, weights, _, labels = random_inputs(tmp_path, 40, seed=0, weight_seed=1, classes=4)
    return data, weights, labels


def invoke(*args):
    result = runner.invoke(app, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


def test_attribute_and_analyze_on_ray_equal_the_local_engine(
    tmp_path, images_and_model, ray_cluster, one_thread
):
    data, weights, _ = images_and_model
    common = ["attribute", data, "--model", "relscope.data.builtin:mnist_cnn", "--weights",
              weights, "--method", "epsilon_gamma_box", "-p", "low=0", "-p", "high=1",
              "--batch-size", "5"]  # fmt: skip
    invoke(*common, "--device", "cpu", "--out", tmp_path / "local.h5")
    shown = invoke(*common, "--engine", "ray", "--shard-size", "15", "--out", tmp_path / "a.h5")
    shards = sorted(tmp_path.glob("a-*-of-00003.h5"))
    assert len(shards) == 3 and "wrote 3 shards" in " ".join(shown.output.split())
    assert_same_rows([tmp_path / "local.h5"], shards)
    pipeline = ["--pipeline", tmp_path / "p.yaml"]
    (tmp_path / "p.yaml").write_text(PIPELINE)
    invoke("analyze", tmp_path / "local.h5", "--out", tmp_path / "local-an.h5", *pipeline)
    invoke("analyze", *shards, "--out", tmp_path / "ray-an.h5", "--engine", "ray", *pipeline)
    assert_same(tmp_path / "local-an.h5", tmp_path / "ray-an.h5")


def test_without_ray_the_command_says_in_one_line_how_to_install_it(
    tmp_path, images_and_model, monkeypatch
):
    data, weights, _ = images_and_model
    monkeypatch.setitem(sys.modules, "ray", None)
    result = runner.invoke(app, ["attribute", str(data), "--model",
                                 "relscope.data.builtin:mnist_cnn", "--weights", str(weights),
                                 "--engine", "ray", "--out", str(tmp_path / "a.h5")])  # fmt: skip
    assert result.exit_code == 2
    assert result.output.strip().splitlines()[-1] == (
        "relscope: error: --engine ray needs Ray, which is not installed: "
        "pip install 'relscope[ray]'"
    )
