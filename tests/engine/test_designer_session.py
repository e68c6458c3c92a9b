"""Design sessions: the layer ruler, samples, uploads and predictions."""

from __future__ import annotations

import io
import threading

import numpy as np
import pytest
import torch
from PIL import Image

from engine.designer_models import NAMES, make_project, tiny_resnet
from relscope.attribution.lrp.composites import Index, segments
from relscope.attribution.lrp.engine import LRP
from relscope.attribution.lrp.rules import UniformSplit
from relscope.data.builtin import mnist_cnn
from relscope.data.dataset import open_dataset
from relscope.engine.designer import DesignSession, InputSettings, LayerInfo
from relscope.errors import ConfigError


def cnn_session():
    torch.manual_seed(0)
    return DesignSession(mnist_cnn(), input_shape=(1, 28, 28), class_names=NAMES)


def resnet_session():
    return DesignSession(tiny_resnet(), input_shape=(3, 16, 16))


SESSIONS = {"cnn": cnn_session, "resnet": resnet_session}


@pytest.mark.parametrize("which", SESSIONS)
def test_layers_are_the_lrp_layers_in_order(which):
    session = SESSIONS[which]()
    layers = session.layers()
    expected = LRP(session.model).layers
    assert all(isinstance(layer, LayerInfo) for layer in layers)
    assert [(l.index, l.name, l.kind, l.type) for l in layers] == [  # noqa: E741
        (l.index, l.name, l.kind, l.type)
        for l in expected  # noqa: E741
    ]
    assert [l.index for l in layers] == list(range(len(layers)))  # noqa: E741
    if which == "resnet":
        assert {"block.norm", "add", "flatten"} <= {l.name for l in layers}  # noqa: E741


@pytest.mark.parametrize("which", SESSIONS)
def test_segment_ranges_select_exactly_the_ruler_slice(which):
    session = SESSIONS[which]()
    layers = session.layers()
    n = len(layers)
    for start, stop in [(0, 1), (0, n), (1, 4), (2, n - 1), (n - 1, None), (3, None)]:
        ruler = [layer.name for layer in layers[start:stop]]
        lrp = LRP(session.model, segments([(start, stop, "uniform_split")]))
        chosen = [l.name for l in lrp.layers if Index(start, stop)(l, lrp.layers)]  # noqa: E741
        assert chosen == ruler
        # Rules go to every selected layer that is still in the graph (batch norm merged
        # into its convolution gets none); no layer outside the slice gets this rule.
        assigned = [layer.name for layer, rule in lrp.rules() if isinstance(rule, UniformSplit)]
        kept = {layer.name for layer, _ in lrp.rules()}
        assert assigned == [name for name in ruler if name in kept]


@pytest.mark.parametrize("which", SESSIONS)
def test_output_shapes_are_the_forward_shapes(which):
    session = SESSIONS[which]()
    x = torch.rand(2, *session.input_shape)
    seen = {}
    modules = dict(session.model.named_modules())

    def hook(name):
        def record(_module, _inputs, out):
            seen.setdefault(name, tuple(out.shape[1:]))

        return record

    handles = [module.register_forward_hook(hook(name)) for name, module in modules.items() if name]
    with torch.no_grad():
        output = session.model(x)
    for handle in handles:
        handle.remove()
    layers = session.layers()
    for layer in layers:
        if layer.name in seen:
            assert layer.output_shape == seen[layer.name], layer.name
    assert layers[-1].output_shape == tuple(output.shape[1:])
    if which == "resnet":
        shapes = {layer.name: layer.output_shape for layer in layers}
        assert shapes["add"] == (8, 16, 16)
        assert shapes["flatten"] == (8,)


def test_untraceable_models_get_shapes_from_their_modules():
    class Branchy(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(1, 4, 3)
            self.head = torch.nn.Linear(4 * 26 * 26, 5)

        def forward(self, x):
            x = self.conv(x)
            if x.sum() > 1e9:  # data-dependent control flow: torch.fx cannot trace this
                x = -x
            return self.head(x.flatten(1))

    session = DesignSession(Branchy(), input_shape=(1, 28, 28))
    with pytest.warns(Warning, match="falling back"):
        layers = session.layers()
    assert [(l.name, l.output_shape) for l in layers] == [  # noqa: E741
        ("conv", (4, 26, 26)),
        ("head", (5,)),
    ]


def test_a_shape_the_model_cannot_take_is_a_config_error():
    session = DesignSession(mnist_cnn(), input_shape=(3, 10, 10))
    with pytest.raises(ConfigError, match=r"does not run on inputs of shape \(3, 10, 10\)"):
        session.layers()
    with pytest.raises(ConfigError, match="no input shape"):
        DesignSession(mnist_cnn()).layers()


@pytest.mark.parametrize("which", SESSIONS)
def test_predict_is_the_top_10_of_a_forward_pass(which):
    session = SESSIONS[which]()
    x = torch.rand(*session.input_shape)
    with torch.no_grad():
        output = session.model(x[None])[0]
    top = torch.topk(output, 10)
    predictions = session.predict(x)
    assert [p.index for p in predictions] == top.indices.tolist()
    assert [p.score for p in predictions] == pytest.approx(top.values.tolist())
    probabilities = torch.softmax(output, 0)[top.indices]
    assert [p.probability for p in predictions] == pytest.approx(probabilities.tolist())
    scores = [p.score for p in predictions]
    assert scores == sorted(scores, reverse=True)
    names = NAMES if which == "cnn" else [str(i) for i in range(12)]
    assert [p.name for p in predictions] == [names[i] for i in top.indices.tolist()]
    assert session.predict(x[None]) == predictions  # a batch of one is the same input
    assert len(session.predict(x, k=3)) == 3


def test_a_project_session_gives_its_samples_model_and_names(tmp_path):
    project, images, _ = make_project(tmp_path)
    session = DesignSession.from_project(project)
    assert session.num_samples == len(images)
    assert session.input_shape == (1, 28, 28)
    dataset = open_dataset(tmp_path / "data.h5")
    for index in (0, 5, len(images) - 1):
        x = session.sample(index)
        assert x.shape == (1, 1, 28, 28)
        assert torch.equal(x[0], dataset[index][0])
        assert np.array_equal(x[0].numpy(), images[index])
    x = session.sample(3)
    with torch.no_grad():
        output = session.model(x)[0]
    best = session.predict(x)[0]
    assert best.index == int(output.argmax())
    assert best.name == NAMES[best.index]
    # The project's weights are loaded, not a fresh model's.
    weights = torch.load(tmp_path / "cnn.pt", weights_only=True)
    assert torch.equal(session.model.state_dict()["0.weight"], weights["0.weight"])
    for bad in (-1, len(images), True, "1"):
        with pytest.raises(ConfigError, match="sample index"):
            session.sample(bad)


def png(array: np.ndarray, mode: str, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array, mode=mode).save(buffer, format=fmt)
    return buffer.getvalue()


def test_uploads_are_resized_to_an_hdf5_projects_input(tmp_path):
    project, _, _ = make_project(tmp_path)
    session = DesignSession.from_project(project)
    pixels = np.random.default_rng(0).integers(0, 256, (40, 50), dtype=np.uint8)
    x = session.upload(png(pixels, "L"))
    expected = np.asarray(
        Image.fromarray(pixels, "L").resize((28, 28), Image.Resampling.BILINEAR), np.float32
    )
    assert x.shape == (1, 1, 28, 28)
    assert np.allclose(x[0, 0].numpy(), expected / 255.0)
    # Colour uploads become grayscale for a one-channel model; JPEG works too.
    colour = np.random.default_rng(1).integers(0, 256, (20, 20, 3), dtype=np.uint8)
    assert session.upload(png(colour, "RGB", "JPEG")).shape == (1, 1, 28, 28)
    assert len(session.predict(session.upload(png(pixels, "L")))) == 10


class Shift:
    """A transform standing in for a dataset's normalization."""

    def __call__(self, image):
        return (image - 0.5) / 0.25


@pytest.mark.parametrize(
    ("up", "down"), [("fill_zeros", "center_crop"), ("resize", "resize"), ("mirror_edge", "resize")]
)
def test_uploads_match_what_an_image_folder_reads(tmp_path, up, down):
    pixels = np.random.default_rng(2).integers(0, 256, (18, 30, 3), dtype=np.uint8)
    data = png(pixels, "RGB")
    (tmp_path / "images" / "cls").mkdir(parents=True)
    (tmp_path / "images" / "cls" / "x.png").write_bytes(data)
    dataset = open_dataset(
        tmp_path / "images", size=(24, 20), up_sampling=up, down_sampling=down, transform=Shift()
    )
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(), torch.nn.Linear(4, 5),
    )  # fmt: skip
    session = DesignSession(model, samples=dataset)
    assert session.input_shape == (3, 24, 20)
    assert session.input_settings == InputSettings((24, 20), up, down, "RGB", dataset.transform)
    uploaded = session.upload(data)
    assert torch.equal(uploaded, session.sample(0))
    assert torch.equal(uploaded[0], dataset[0][0])


NOISE = png(np.random.default_rng(3).integers(0, 256, (32, 32), dtype=np.uint8), "L")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"certainly not an image" * 10, "not a PNG or JPEG image"),
        (png(np.zeros((4, 4), np.uint8), "L", "GIF"), "not a PNG or JPEG image"),
        (NOISE[: len(NOISE) // 2], "not a decodable PNG or JPEG image"),
        (png(np.zeros((8, 8), np.uint8), "L") + b"\0" * 5000, "more than the limit of 4096"),
        ("text", "expected image bytes"),
    ],
)
def test_bad_uploads_are_config_errors(data, message):
    session = DesignSession(mnist_cnn(), input_shape=(1, 28, 28), max_upload_bytes=4096)
    with pytest.raises(ConfigError, match=message) as error:
        session.upload(data)
    assert "\n" not in str(error.value)


def test_uploads_with_too_many_pixels_are_refused_before_decoding():
    settings = InputSettings.for_shape((1, 28, 28))
    with pytest.raises(ConfigError, match="30 x 20 pixels, more than the limit of 100"):
        settings.decode(png(np.zeros((20, 30), np.uint8), "L"), max_pixels=100)


def test_sessions_without_a_known_input_take_no_uploads():
    session = DesignSession(mnist_cnn())
    with pytest.raises(ConfigError, match="no uploads"):
        session.upload(png(np.zeros((4, 4), np.uint8), "L"))
    with pytest.raises(ConfigError, match="no uploads"):
        DesignSession(mnist_cnn(), input_shape=(2, 28, 28)).upload(b"x")
    with pytest.raises(ConfigError, match="1- or 3-channel"):
        InputSettings.for_shape((2, 28, 28))


def test_one_session_from_four_threads_predicts_as_serially(tmp_path):
    project, images, _ = make_project(tmp_path, n=16)
    session = DesignSession.from_project(project)
    serial = [session.predict(session.sample(i)) for i in range(len(images))]
    results: dict[int, list] = {}
    errors = []
    barrier = threading.Barrier(4)

    def work(worker):
        try:
            barrier.wait()
            for _ in range(3):
                for i in range(worker, len(images), 2):  # overlapping samples between threads
                    got = session.predict(session.sample(i))
                    results.setdefault(i, []).append(got)
            session.layers()
        except Exception as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(w % 2,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    for i, runs in results.items():
        assert len(runs) == 6
        assert all(run == serial[i] for run in runs)
