"""``relscope attribute``: the batch engine (exact rows, strategies, resume) and its command."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from relscope.attribution.config import method_config
from relscope.cli import attribute as attribute_module
from relscope.cli.main import app
from relscope.data.attribution_db import AttributionDatabase
from relscope.data.builtin import mnist_cnn
from relscope.data.dataset import open_dataset, write_hdf5_dataset
from relscope.engine.attribution import attribute_dataset
from relscope.engine.inputs import load_method
from relscope.engine.progress import Silent
from relscope.errors import ConfigError
from support.engine_inputs import METHOD, REFERENCE, random_inputs

runner = CliRunner()


@pytest.fixture
def files(tmp_path):
    data, weights, images, labels = random_inputs(tmp_path, 48, seed=0, weight_seed=1)
    return tmp_path, data, weights, images, labels


def model_from(weights):
    model = mnist_cnn()
    model.load_state_dict(torch.load(weights, weights_only=True))
    return model.eval()


class OnBatch(Silent):
    """Progress calling ``function`` with the samples done by this run after every batch."""

    def __init__(self, function):
        self.function, self.done = function, 0

    def advance(self, task, n=1):
        self.done += n
        self.function(self.done)


def read(path):
    with AttributionDatabase(path) as database:
        attribution, label, prediction = database.read(database.indices)
        return database.indices, np.asarray(attribution), label, prediction, database.metadata


def test_rows_equal_the_attributor_on_each_sample_with_the_true_label(files):
    tmp_path, data, weights, images, labels = files
    model = model_from(weights)
    with open_dataset(data) as dataset:
        run = attribute_dataset(
            dataset, model, method_config(METHOD), tmp_path / "a.h5", batch_size=7
        )
    assert (run.samples, run.resumed) == (48, 0)
    index, attribution, label, prediction, metadata = read(tmp_path / "a.h5")
    expected = method_config(METHOD).attributor()(
        model, torch.from_numpy(images), torch.from_numpy(labels)
    )
    np.testing.assert_array_equal(index, np.arange(48))
    np.testing.assert_allclose(attribution, expected.relevance.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(prediction, expected.output.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(label, labels)
    assert metadata["method"] == {**METHOD, "name": "epsilon_gamma_box", "strategy": "true_label"}
    assert metadata["model"] == ""
    assert run.accuracy == pytest.approx((expected.output.argmax(1).numpy() == labels).mean())


def test_predicted_label_strategy_and_a_class_subset(files):
    tmp_path, data, weights, images, labels = files
    model = model_from(weights)
    with open_dataset(data) as dataset:
        attribute_dataset(
            dataset, model, method_config("epsilon_plus"), tmp_path / "p.h5",
            strategy="predicted_label", classes=[0, 2],
        )  # fmt: skip
    index, attribution, label, _, metadata = read(tmp_path / "p.h5")
    rows = np.flatnonzero(labels != 1)
    np.testing.assert_array_equal(index, rows)
    np.testing.assert_array_equal(label, labels[rows])
    expected = method_config("epsilon_plus").attributor()(model, torch.from_numpy(images[rows]))
    np.testing.assert_allclose(attribution, expected.relevance.numpy(), rtol=1e-5, atol=1e-6)
    assert metadata["method"]["strategy"] == "predicted_label"


def test_an_interrupted_run_resumes_and_writes_the_same_file(files):
    tmp_path, data, weights, _, _ = files
    model = model_from(weights)
    config = method_config(METHOD)

    def interrupt(done):
        if done >= 20:
            raise KeyboardInterrupt

    with open_dataset(data) as dataset:
        with pytest.raises(KeyboardInterrupt):
            attribute_dataset(dataset, model, config, tmp_path / "r.h5", batch_size=4,
                              block_rows=8, progress=OnBatch(interrupt))  # fmt: skip
        assert not (tmp_path / "r.h5").exists()
        computed = []
        options = {"batch_size": 4, "block_rows": 8}
        run = attribute_dataset(
            dataset, model, config, tmp_path / "r.h5", progress=OnBatch(computed.append), **options
        )
        attribute_dataset(dataset, model, config, tmp_path / "whole.h5", **options)
    assert run.resumed == 16 and computed[-1] == 32  # two segments of 8 were kept
    for resumed, whole in zip(
        read(tmp_path / "r.h5")[:4], read(tmp_path / "whole.h5")[:4], strict=True
    ):
        np.testing.assert_array_equal(resumed, whole)


def test_engine_refuses_bad_settings(files, tmp_path):
    _, data, weights, _, _ = files
    model = model_from(weights)
    config = method_config(METHOD)
    with open_dataset(data) as dataset:
        with pytest.raises(ConfigError, match="strategy must be one of"):
            attribute_dataset(dataset, model, config, tmp_path / "x.h5", strategy="best")
        with pytest.raises(ConfigError, match="classes \\[7\\]: no sample"):
            attribute_dataset(dataset, model, config, tmp_path / "x.h5", classes=[7])
        with pytest.raises(ConfigError, match="must return \\(batch, classes\\)"):
            attribute_dataset(dataset, torch.nn.Identity(), config, tmp_path / "x.h5")
    multi = write_hdf5_dataset(
        tmp_path / "multi.h5", np.zeros((4, 1, 28, 28), np.float32), np.eye(4, 3, dtype=bool)
    )
    with open_dataset(multi) as dataset, pytest.raises(ConfigError, match="use predicted_label"):
        attribute_dataset(dataset, model, config, tmp_path / "x.h5")


def test_load_method_reads_names_params_and_configuration_files(tmp_path):
    assert load_method("epsilon_gamma_box", ["low=0", "high=1.5"]).params == {
        "low": 0,
        "high": 1.5,
    }
    (tmp_path / "m.json").write_text('{"name": "mine", "method": "epsilon", "params": {"eps": 2}}')
    assert load_method(str(tmp_path / "m.json")).name == "mine"
    with pytest.raises(ConfigError, match="-p eps: expected name=value"):
        load_method("epsilon", ["eps"])
    with pytest.raises(ConfigError, match="applies to a method name"):
        load_method(str(tmp_path / "m.json"), ["eps=1"])


def invoke(*args):
    result = runner.invoke(app, ["attribute", *map(str, args)], catch_exceptions=False)
    result.text = " ".join(result.output.split())
    return result


def test_command_writes_the_database_and_reports_throughput(files):
    tmp_path, data, weights, images, _ = files
    out = tmp_path / "cli.h5"
    args = [data, "--model", REFERENCE, "--weights", weights, "--method", "epsilon_gamma_box",
            "-p", "low=0", "-p", "high=1", "--out", out, "--device", "cpu"]  # fmt: skip
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    assert "48 samples" in result.text and "samples/s" in result.text
    _, attribution, _, _, metadata = read(out)
    assert metadata["method"]["params"] == {"low": 0, "high": 1}
    assert metadata["model"] == REFERENCE
    assert attribution.shape == (48, 1, 28, 28)
    again = invoke(*args)
    assert again.exit_code == 0 and "complete already" in again.text
    other = runner.invoke(app, ["attribute", *map(str, args), "-p", "gamma=0.5"])
    assert other.exit_code == 2
    assert "holds attributions of other settings" in " ".join(other.output.split())
    # Normalization is applied before the model, and the attribution is of the normalized input.
    norm = invoke(*args[:-4], "--out", tmp_path / "norm.h5", "--mean", "0.5", "--std", "0.25")
    assert norm.exit_code == 0, norm.output
    model = model_from(weights)
    x = (torch.from_numpy(images) - 0.5) / 0.25
    expected = method_config({"method": "epsilon_gamma_box", "params": {"low": 0, "high": 1}})
    relevance = expected.attributor()(model, x, torch.from_numpy(np.arange(48) % 3)).relevance
    np.testing.assert_allclose(
        read(tmp_path / "norm.h5")[1], relevance.numpy(), rtol=1e-5, atol=1e-6
    )


def test_command_errors_are_one_line(files):
    tmp_path, data, _, _, _ = files
    base = [data, "--model", REFERENCE, "--out", tmp_path / "e.h5"]
    for extra, message in (
        (["--method", "nope"], "unknown method 'nope'"),
        (["--model", "nowhere:f"], "cannot import 'nowhere'"),
        (["--param", "eps"], "-p eps: expected name=value"),
        (
            ["--device", "cuda:0"] if not torch.cuda.is_available() else ["--device", "tpu"],
            "--device",
        ),
        (["--classes", "x"], "'x' is not a class index"),
        (["--mean", "0.5"], "--mean and --std go together"),
        (["--input-size", "8", "8"], "apply to image folders only"),
    ):
        result = runner.invoke(app, ["attribute", *map(str, base + extra)])
        assert result.exit_code == 2, (extra, result.output)
        assert message in " ".join(result.output.split()), (extra, result.output)


@pytest.mark.parametrize(
    ("method", "params", "message"),
    [
        ("epsilon_gamma_box", ["low=abc"],
         "-p low=abc: expected a number or a list of numbers (low of epsilon_gamma_box), "
         "got 'abc'"),
        ("epsilon_gamma_box", ["low=0", "high=[1, x]"],
         "-p high=[1, x]: expected a number or a list of numbers (high of epsilon_gamma_box), "
         "got [1, 'x']"),
        ("epsilon_gamma_box", ["gamma=true"],
         "-p gamma=true: expected a number (gamma of epsilon_gamma_box), got True"),
        ("smoothgrad", ["n=2.5"], "-p n=2.5: expected an integer (n of smoothgrad), got 2.5"),
        ("epsilon", ["maxpool=max"],
         "-p maxpool=max: expected one of winner_takes_all, average (maxpool of epsilon), "
         "got 'max'"),
        ("epsilon_plus", ["gama=0.5"],
         "-p gama=0.5: epsilon_plus has no parameter 'gama'; its parameters: eps, maxpool"),
        ("smoothgrad", ["composite=epsilon_plus", "lo=0"],
         "-p lo=0: epsilon_plus has no parameter 'lo'; its parameters: eps, maxpool"),
        ("epsilon_gamma_box", ["low"], "-p low: expected name=value"),
        ("epsilon_gamma_box", ["=1"], "-p =1: expected name=value"),
    ],
)  # fmt: skip
def test_bad_method_parameters_name_the_parameter_and_the_expected_type(
    files, method, params, message
):
    tmp_path, data, _, _, _ = files
    options = [item for param in params for item in ("-p", param)]
    result = runner.invoke(
        app,
        ["attribute", str(data), "--model", REFERENCE, "--out", str(tmp_path / "e.h5"),
         "--method", method, *options],
    )  # fmt: skip
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert message in " ".join(result.output.split()), result.output
    assert not (tmp_path / "e.h5").exists()


def test_number_literals_yaml_reads_as_text_are_numbers():
    # PyYAML reads 1e-3 (no dot) as a string; the method still gets the number.
    config = load_method("epsilon_gamma_box", ["eps=1e-3", "low=[-1e0, 0]", "high=2E1"])
    assert config.params == {"eps": 0.001, "low": [-1.0, 0], "high": 20.0}


def test_ctrl_c_keeps_completed_segments_and_says_how_to_resume(files, monkeypatch):
    tmp_path, data, _, _, _ = files

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(attribute_module, "attribute_dataset", interrupted)
    result = runner.invoke(app, ["attribute", str(data), "--model", REFERENCE, "--out",
                                 str(tmp_path / "i.h5")])  # fmt: skip
    assert result.exit_code == 130
    assert "run the same command to resume" in " ".join(result.output.split())
    assert h5py.is_hdf5(data)


def test_block_rows_is_the_option_and_segment_rows_its_hidden_old_name(files):
    tmp_path, data, weights, _, _ = files
    shown = runner.invoke(app, ["attribute", "--help"], env={"COLUMNS": "200"})
    assert "--block-rows" in shown.output and "--segment-rows" not in shown.output
    base = [data, "--model", REFERENCE, "--weights", weights, "--device", "cpu", "--batch-size", 8]
    for option in ("--block-rows", "--segment-rows"):
        result = invoke(*base, option, 16, "--out", tmp_path / f"{option}.h5")
        assert result.exit_code == 0, result.output
    new, old = read(tmp_path / "--block-rows.h5"), read(tmp_path / "--segment-rows.h5")
    for a, b in zip(new[:4], old[:4], strict=True):
        np.testing.assert_array_equal(a, b)
