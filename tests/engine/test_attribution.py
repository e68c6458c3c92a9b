"""``relscope.engine.attribute`` as a library: the same database as the command, progress
callbacks that add up, resume after an interruption."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from relscope.attribution.config import method_config
from relscope.cli.main import app
from relscope.data.attribution_db import AttributionDatabase
from relscope.data.dataset import open_dataset
from relscope.engine import AttributionRun, Progress, Silent, attribute
from relscope.engine.inputs import load_method
from support.engine_inputs import METHOD, REFERENCE, load_cnn


def read(path):
    with AttributionDatabase(path) as database:
        attribution, label, prediction = database.read(database.indices)
        metadata = database.metadata
        return {
            "index": database.indices,
            "attribution": np.asarray(attribution),
            "label": np.asarray(label),
            "prediction": np.asarray(prediction),
            "method": metadata["method"],
            "model": metadata["model"],
        }


def test_the_library_writes_what_the_command_writes(tmp_path, images_and_model):
    data, weights, _ = images_and_model
    command = tmp_path / "command.h5"
    result = CliRunner().invoke(
        app,
        ["attribute", str(data), "--model", REFERENCE, "--weights", str(weights), "--method",
         "epsilon_gamma_box", "-p", "low=0", "-p", "high=1", "--classes", "1,3",
         "--batch-size", "6", "--device", "cpu", "--out", str(command)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    with open_dataset(data) as dataset:
        run = attribute(
            dataset,
            load_cnn(weights),
            load_method("epsilon_gamma_box", ["low=0", "high=1"]),
            tmp_path / "library.h5",
            classes=[1, 3],
            batch_size=6,
            model_name=REFERENCE,
        )
    assert isinstance(run, AttributionRun) and (run.samples, run.resumed) == (20, 0)
    library, expected = read(tmp_path / "library.h5"), read(command)
    assert library.keys() == expected.keys()
    for key, value in expected.items():
        if isinstance(value, np.ndarray):
            np.testing.assert_array_equal(library[key], value, err_msg=key)
        else:
            assert library[key] == value, key


def test_progress_hears_one_task_whose_advances_add_up_to_the_samples(
    tmp_path, images_and_model, recorder
):
    data, weights, _ = images_and_model
    assert isinstance(recorder, Progress)
    with open_dataset(data) as dataset:
        run = attribute(dataset, load_cnn(weights), method_config(METHOD), tmp_path / "a.h5",
                        batch_size=7, progress=recorder)  # fmt: skip
    assert recorder.calls[0] == ("start", "attribute", 40, 0)
    assert [call[2] for call in recorder.of("advance")] == [7, 7, 7, 7, 7, 5]
    assert recorder.calls[-2:] == [("finish", "attribute"), ("report", run)]
    # A complete file is kept: a note and the report, no task.
    again = type(recorder)()
    with open_dataset(data) as dataset:
        kept = attribute(dataset, load_cnn(weights), method_config(METHOD), tmp_path / "a.h5",
                         progress=again)  # fmt: skip
    assert kept.resumed == 40 and not again.of("start")
    assert "complete already" in again.messages()[0] and again.reports(AttributionRun) == [kept]


def test_a_resumed_run_starts_with_the_kept_blocks_done(tmp_path, images_and_model, recorder):
    data, weights, _ = images_and_model
    model, config = load_cnn(weights), method_config(METHOD)

    class Interrupt(Silent):
        done = 0

        def advance(self, task, n=1):
            self.done += n
            if self.done >= 20:
                raise KeyboardInterrupt

    class Finished(Interrupt):
        finished = False

        def finish(self, task):
            self.finished = True

    stopper = Finished()
    with open_dataset(data) as dataset:
        with pytest.raises(KeyboardInterrupt):
            attribute(dataset, model, config, tmp_path / "r.h5", batch_size=4, block_rows=8,
                      progress=stopper)  # fmt: skip
        assert stopper.finished  # the task is finished also when the job fails
        run = attribute(dataset, model, config, tmp_path / "r.h5", batch_size=4, block_rows=8,
                        progress=recorder)  # fmt: skip
        attribute(dataset, model, config, tmp_path / "whole.h5", batch_size=4)
    assert run.resumed == 16  # two blocks of 8 were kept
    assert recorder.calls[0] == ("start", "attribute", 40, 16)
    assert recorder.advanced("attribute") == 40 - 16
    resumed, whole = read(tmp_path / "r.h5"), read(tmp_path / "whole.h5")
    for key in ("index", "attribution", "label", "prediction"):
        np.testing.assert_array_equal(resumed[key], whole[key])


def test_silent_is_the_default_and_a_progress(tmp_path, images_and_model, capsys):
    data, weights, _ = images_and_model
    assert isinstance(Silent(), Progress)
    with open_dataset(data) as dataset:
        attribute(dataset, load_cnn(weights), method_config(METHOD), tmp_path / "s.h5",
                  classes=[0])  # fmt: skip
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""
