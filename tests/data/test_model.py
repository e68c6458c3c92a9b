"""Models by reference and safely loaded weights."""

import pickle

import pytest
import torch

from relscope.data.builtin import mnist_cnn
from relscope.data.model import load_model, load_weights, save_weights
from relscope.errors import ConfigError, PathError

REFERENCE = "relscope.data.builtin:mnist_cnn"


class Payload:
    """Unpickling this would run code: a safe loader must refuse it."""

    def __reduce__(self):
        return (print, ("owned",))


def test_a_factory_reference_with_weights_gives_the_trained_model(tmp_path):
    torch.manual_seed(3)
    trained = mnist_cnn()
    path = save_weights(trained, tmp_path / "cnn.pt")
    model = load_model(REFERENCE, path)
    assert not model.training
    x = torch.rand(2, 1, 28, 28)
    torch.testing.assert_close(model(x), trained.eval()(x))
    # Checkpoints that wrap the state dict are unwrapped.
    torch.save({"epoch": 3, "state_dict": trained.state_dict()}, tmp_path / "ckpt.pt")
    torch.testing.assert_close(load_model(REFERENCE, tmp_path / "ckpt.pt")(x), model(x))
    assert load_model(REFERENCE, params={"num_classes": 4})(x).shape == (2, 4)


def test_weights_files_that_would_run_code_are_refused(tmp_path):
    path = tmp_path / "evil.pt"
    with path.open("wb") as handle:
        pickle.dump({"weight": Payload()}, handle, protocol=2)
    with pytest.raises(ConfigError, match="not a safe weights file"):
        load_weights(path)
    torch.save({"a": 1}, tmp_path / "numbers.pt")
    with pytest.raises(ConfigError, match="expected a state dict"):
        load_weights(tmp_path / "numbers.pt")
    with pytest.raises(PathError, match="no such weights file"):
        load_weights(tmp_path / "missing.pt")


def test_trusted_pickles_need_the_explicit_flag(tmp_path):
    torch.manual_seed(2)
    trained = mnist_cnn()
    torch.save(trained, tmp_path / "whole.pt")  # a pickled module, not a state dict
    with pytest.raises(ConfigError, match="--allow-pickle reads trusted pickles"):
        load_model(REFERENCE, tmp_path / "whole.pt")
    x = torch.rand(2, 1, 28, 28)
    model = load_model(REFERENCE, tmp_path / "whole.pt", allow_pickle=True)
    torch.testing.assert_close(model(x), trained.eval()(x))


def test_weights_of_another_model_are_refused_in_one_line(tmp_path):
    path = save_weights(mnist_cnn(num_classes=4), tmp_path / "four.pt")
    with pytest.raises(ConfigError, match="the weights do not fit model") as error:
        load_model(REFERENCE, path)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize(
    ("reference", "message"),
    [
        ("no_colon", "must look like package.module:factory"),
        ("relscope_missing_module:f", "cannot import 'relscope_missing_module'"),
        ("relscope.data.builtin:missing", "has no 'missing'"),
        ("relscope.data.builtin:MNIST_CLASSES", "is not callable"),
        ("relscope.data.builtin:load_mnist", "not a torch module|unexpected keyword"),
    ],
)
def test_bad_references_are_refused(reference, message):
    with pytest.raises(ConfigError, match=message):
        load_model(reference, params={"train": False} if "load_mnist" in reference else None)


def test_safetensors_weights_are_read_when_the_package_is_there(tmp_path):
    safetensors = pytest.importorskip("safetensors.torch")
    trained = mnist_cnn()
    safetensors.save_file(trained.state_dict(), str(tmp_path / "cnn.safetensors"))
    x = torch.rand(1, 1, 28, 28)
    torch.testing.assert_close(
        load_model(REFERENCE, tmp_path / "cnn.safetensors")(x), trained.eval()(x)
    )
