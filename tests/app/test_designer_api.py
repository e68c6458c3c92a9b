"""The Designer's HTTP API: every endpoint answers what the library call it wraps gives
(the explain PNG is the library heatmap of the same configuration, the curves are
``perturbation_curve``'s), bad requests get 4xx answers naming what was wrong, a saved
design runs unchanged in ``relscope attribute``, and a superseded request gets 409."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient
from PIL import Image
from typer.testing import CliRunner

from relscope.app import DesignerSource, create_app
from relscope.attribution.config import method_config
from relscope.cli.main import app as cli
from relscope.data.attribution_db import AttributionSet
from relscope.data.dataset import HDF5Dataset
from relscope.engine.designer import DesignSession, Stroke, flip, stroke_mask
from relscope.evaluation import perturbation_curve
from relscope.render import heatmap_png
from relscope.render.maps import to_map
from support.designer_models import tiny_cnn
from support.projects import CLASSES, make_project_folder

MODEL = "support.designer_models:tiny_cnn"
CONFIG = {
    "name": "two parts",
    "segments": [
        {"start": 0, "stop": 4, "rule": "gamma", "params": {"gamma": 0.25}},
        {"start": 4, "stop": None, "rule": "epsilon", "params": {"eps": 0.01}},
    ],
}


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("designer")
    project = make_project_folder(root / "p", model=MODEL)
    other = make_project_folder(root / "q")  # names no importable model
    client = TestClient(create_app([project, other]))
    return client, project


def images(project):
    return HDF5Dataset(project.parent / "dataset.h5")


def sample_input(project, index):
    return torch.from_numpy(np.asarray(images(project).sample(index).data))[None].float()


def decode(uri):
    assert uri.startswith("data:image/png;base64,")
    return base64.b64decode(uri.split(",", 1)[1])


def png_bytes(array):
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def test_designers_are_the_projects_naming_a_model(served):
    client, _ = served
    listed = client.get("/api/designer").json()
    assert [(d["id"], d["project"]) for d in listed] == [(0, 0), (1, 1)]
    assert listed[0]["problem"] is None and "tests.models" in listed[1]["problem"]
    detail = client.get("/api/designer/0").json()
    assert detail["input_shape"] == [3, 8, 8] and detail["samples"] == 36
    assert detail["layers"] == 9 and detail["uploads"] is True
    broken = client.get("/api/designer/1")
    assert broken.status_code == 422 and "tests.models:tiny" in broken.json()["detail"]
    assert client.get("/api/designer/7").status_code == 404


def test_layers_are_the_segment_ruler(served):
    client, _ = served
    layers = client.get("/api/designer/0/layers").json()
    reference = DesignSession(tiny_cnn(), input_shape=(3, 8, 8)).layers()
    assert [(x["index"], x["name"], x["kind"]) for x in layers] == [
        (x.index, x.name, x.kind) for x in reference
    ]
    assert layers[0]["shape"] == [4, 8, 8] and layers[-1]["shape"] == [3]


def test_samples_and_their_images(served):
    client, project = served
    assert client.get("/api/designer/0/samples/4").json() == {"index": 4, "label": CLASSES[1]}
    png = client.get("/api/designer/0/samples/4/image.png")
    assert png.headers["content-type"] == "image/png"
    shown = np.asarray(Image.open(io.BytesIO(png.content)))
    data = np.asarray(images(project).sample(4).data)
    np.testing.assert_array_equal(shown, np.rint(np.moveaxis(data, 0, -1) * 255).astype(np.uint8))
    assert client.get("/api/designer/0/samples/36").status_code == 422


def test_explain_gives_the_library_heatmap_of_the_same_configuration(served):
    client, project = served
    body = {"input": {"sample": 5}, "config": CONFIG, "target": "class", "index": 2}
    answer = client.post("/api/designer/0/explain", json=body | {"values": True}).json()
    x = sample_input(project, 5)
    reference = method_config(CONFIG).attributor()(tiny_cnn().eval(), x, 2)
    relevance = reference.relevance.detach().double().numpy()
    expected = heatmap_png(to_map(relevance)[0], cmap="bwr", mode="symmetric")
    assert decode(answer["heatmap"]) == expected
    np.testing.assert_allclose(answer["relevance"], relevance[0], rtol=1e-5, atol=1e-7)
    assert answer["target"] == 2 and answer["target_name"] == CLASSES[2]
    assert [b["index"] for b in answer["boundaries"]] == [4]
    assert answer["boundaries"][0]["heatmap"] is not None
    assert len(answer["sums"]) == 9 and answer["warnings"] == []
    assert answer["output_sum"] == pytest.approx(float(reference.output[0, 2]), rel=1e-5)
    predicted = client.post("/api/designer/0/explain", json=body | {"target": "predicted"})
    assert predicted.json()["target"] == int(reference.output.argmax())


def test_a_design_saved_through_the_api_runs_unchanged_in_relscope_attribute(served, tmp_path):
    client, project = served
    saved = client.put("/api/designer/0/designs/mine", json=CONFIG)
    assert saved.status_code == 200 and saved.json()["name"] == "mine"
    assert "mine" in client.get("/api/designer/0/designs").json()
    design = project.parent / "designs" / "mine.json"
    out = tmp_path / "attribution.h5"
    result = CliRunner().invoke(
        cli,
        ["attribute", str(project.parent / "dataset.h5"), "--model", MODEL, "--method",
         str(design), "--out", str(out), "--strategy", "true_label", "--device", "cpu"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    stored = AttributionSet([out])
    for index in (0, 7):
        label = int(images(project).labels()[index])
        body = {"input": {"sample": index}, "config": "mine", "target": "class", "index": label}
        answer = client.post("/api/designer/0/explain", json=body | {"values": True}).json()
        np.testing.assert_allclose(
            answer["relevance"], stored.get(index).attribution, rtol=1e-4, atol=1e-6
        )


def test_designs_are_created_renamed_duplicated_and_deleted(served):
    client, project = served
    assert client.put("/api/designer/0/designs/a", json=CONFIG).status_code == 200
    copy = client.post("/api/designer/0/designs/a/duplicate", json={"to": "b"})
    assert copy.status_code == 201 and copy.json()["name"] == "b"
    assert client.post("/api/designer/0/designs/a/rename", json={"to": "b"}).status_code == 409
    moved = client.post("/api/designer/0/designs/a/rename", json={"to": "c"})
    assert moved.status_code == 200
    names = client.get("/api/designer/0/designs").json()
    assert "a" not in names and {"b", "c"} <= set(names)
    assert client.get("/api/designer/0/designs/c").json()["segments"] == CONFIG["segments"]
    assert client.delete("/api/designer/0/designs/c").status_code == 204
    assert client.get("/api/designer/0/designs/c").status_code == 404
    assert not (project.parent / "designs" / "c.json").exists()


@pytest.mark.parametrize(
    ("path", "body", "status", "words"),
    [
        ("explain", {"input": {"sample": 1}, "config": {"name": "x", "segments": [
            {"start": 0, "stop": None, "rule": "nope"}]}}, 422, "nope"),
        ("explain", {"input": {"sample": 1}, "config": {"name": "x", "segments": [
            {"start": 0, "stop": 40, "rule": "epsilon"}]}}, 422, "40"),
        ("explain", {"input": {"sample": 1}, "config": {"name": "x", "method": "epsilon",
            "params": {"eps": "big"}}}, 422, "eps"),
        ("explain", {"input": {"sample": 99}, "config": CONFIG}, 422, "99"),
        ("explain", {"input": {"sample": 1, "upload": "0" * 24}, "config": CONFIG}, 422, "one"),
        ("explain", {"input": {"upload": "0" * 24}, "config": CONFIG}, 404, "upload"),
        ("explain", {"input": {"sample": 1}, "config": CONFIG, "target": "class"}, 422, "index"),
        ("explain", {"input": {"sample": 1}, "config": CONFIG, "target": "class", "index": 3},
            422, "0..2"),
        ("explain", {"input": {"sample": 1}, "config": CONFIG, "cmap": "nope"}, 422, "nope"),
        ("explain", {"input": {"sample": 1}, "config": "unknown-design"}, 404, "unknown-design"),
        ("predict", {"input": {"sample": 1, "flip": {"strokes": [
            {"points": [[1, 1]], "radius": -1}]}}}, 422, "radius"),
        ("curves", {"input": {"sample": 1}, "configs": []}, 422, "configs"),
    ],
)  # fmt: skip
def test_bad_requests_get_a_4xx_naming_what_was_wrong(served, path, body, status, words):
    client, _ = served
    answer = client.post(f"/api/designer/0/{path}", json=body)
    assert answer.status_code == status, answer.text
    assert words in str(answer.json()["detail"])


def test_bad_design_names_and_configurations_are_refused(served):
    client, _ = served
    assert client.put("/api/designer/0/designs/..x", json=CONFIG).status_code == 422
    bad = client.put("/api/designer/0/designs/ok", json={"segments": [{"start": 0, "rule": 3}]})
    assert bad.status_code == 422 and "rule" in bad.json()["detail"]
    past = {"name": "p", "segments": [{"start": 0, "stop": 99, "rule": "epsilon"}]}
    assert client.put("/api/designer/0/designs/ok", json=past).status_code == 422


def test_uploads_are_decoded_limited_and_predicted(served):
    client, _ = served
    pixels = np.random.default_rng(0).integers(0, 256, (20, 12, 3), dtype=np.uint8)
    sent = client.post(
        "/api/designer/0/uploads", content=png_bytes(pixels), headers={"content-type": "image/png"}
    )
    assert sent.status_code == 201 and sent.json()["shape"] == [3, 8, 8]
    key = sent.json()["upload"]
    answer = client.post("/api/designer/0/predict", json={"input": {"upload": key}}).json()
    session = DesignSession(tiny_cnn(), input_shape=(3, 8, 8))
    expected = session.predict(session.upload(png_bytes(pixels)))
    assert [p["index"] for p in answer["predictions"]] == [p.index for p in expected]
    assert answer["predictions"][0]["score"] == pytest.approx(expected[0].score, rel=1e-5)
    image = client.get(f"/api/designer/0/uploads/{key}/image.png")
    assert image.status_code == 200 and Image.open(io.BytesIO(image.content)).size == (8, 8)
    garbage = client.post("/api/designer/0/uploads", content=b"not an image")
    assert garbage.status_code == 422 and "PNG or JPEG" in garbage.json()["detail"]
    huge = client.post("/api/designer/0/uploads", content=b"\0" * (16 * 1024 * 1024 + 1))
    assert huge.status_code == 413


def test_flipping_strokes_gives_the_library_prediction(served):
    client, project = served
    stroke = {"points": [[1, 1], [6, 6]], "radius": 1.5}
    body = {"input": {"sample": 3, "flip": {"strokes": [stroke], "fill": 0.0}}, "k": 3}
    answer = client.post("/api/designer/0/predict", json=body).json()
    x = sample_input(project, 3)
    flipped = flip(x, stroke_mask([Stroke(stroke["points"], 1.5)], 8, 8), 0.0)
    with torch.no_grad():
        scores = tiny_cnn().eval()(flipped)[0]
    top = torch.topk(scores, 3)
    assert [p["index"] for p in answer["predictions"]] == top.indices.tolist()
    np.testing.assert_allclose([p["score"] for p in answer["predictions"]], top.values, rtol=1e-5)
    assert answer["image"].startswith("data:image/png")


def test_curves_equal_perturbation_curve(served):
    client, project = served
    body = {"input": {"sample": 2}, "configs": [CONFIG, "epsilon"], "steps": 4, "index": 1}
    answer = client.post("/api/designer/0/curves", json=body).json()
    x = sample_input(project, 2)
    model = tiny_cnn().eval()
    for row, config in zip(answer, [CONFIG, "epsilon"], strict=True):
        relevance = method_config(config).attributor()(model, x, 1).relevance
        for order in ("most", "least"):
            curve = perturbation_curve(model, x, relevance, 1, order=order, steps=4, fill="zeros")
            np.testing.assert_allclose(row[order], curve.scores[0].numpy(), rtol=1e-5)
        assert row["auc"][0] == pytest.approx(
            float(perturbation_curve(model, x, relevance, 1, steps=4).auc()[0]), rel=1e-5
        )


def test_compare_shares_one_scale(served):
    client, _ = served
    columns = [{"input": {"sample": 1}}, {"input": {"sample": 2}, "target": "class", "index": 0}]
    answer = client.post(
        "/api/designer/0/compare", json={"configs": [CONFIG, "epsilon"], "columns": columns}
    ).json()
    assert answer["names"] == ["two parts", "epsilon"]
    assert len(answer["cells"]) == 2 and len(answer["cells"][0]) == 2
    assert answer["cells"][1][1]["target"] == 0
    assert answer["scale"] > 0
    maxima = [
        np.abs(np.asarray(Image.open(io.BytesIO(decode(c["heatmap"])))).astype(int) - 127).max()
        for row in answer["cells"]
        for c in row
    ]
    assert max(maxima) >= 127  # the cell holding the scale's maximum reaches the palette's end
    assert min(maxima) < max(maxima)  # the others are drawn on that scale, not their own


def test_a_superseded_request_is_answered_with_409(served):
    client, _ = served
    designer = client.app.state.designers.get(0)
    designer.session.explainer.results.clear()
    calls = []

    def newer_request_arrives(module, _):
        calls.append(module)
        if len(calls) == 2:
            designer.session.requests.begin("tab-1:explain")

    handle = torch.nn.modules.module.register_module_forward_pre_hook(newer_request_arrives)
    body = {"input": {"sample": 9}, "config": CONFIG}
    try:
        answer = client.post(
            "/api/designer/0/explain", json=body, headers={"X-Designer-Session": "tab-1"}
        )
    finally:
        handle.remove()
    assert answer.status_code == 409 and "superseded" in answer.json()["detail"]
    again = client.post(
        "/api/designer/0/explain", json=body, headers={"X-Designer-Session": "tab-1"}
    )
    assert again.status_code == 200


def test_a_designer_without_a_project(tmp_path):
    folder = tmp_path / "images"
    (folder / "sub").mkdir(parents=True)
    rng = np.random.default_rng(1)
    for name in ("b.png", "a.png", "sub/c.jpg"):
        Image.fromarray(rng.integers(0, 256, (10, 10, 3), dtype=np.uint8)).save(folder / name)
    (folder / "notes.txt").write_text("not an image")
    source = DesignerSource(
        MODEL, images=folder, designs=tmp_path, input_size=(8, 8), mean=(0.5, 0.5, 0.5),
        std=(0.25, 0.25, 0.25),
    )  # fmt: skip
    client = TestClient(create_app([], designers=[source]))
    assert client.get("/api/designer").json()[0]["project"] is None
    detail = client.get("/api/designer/0").json()
    assert detail["samples"] == 3
    assert detail["command"] == (
        f"relscope attribute DATASET --model {MODEL} --input-size 8 8 --mean 0.5,0.5,0.5 "
        "--std 0.25,0.25,0.25 --out designed.h5"
    )
    assert [client.get(f"/api/designer/0/samples/{i}").json()["label"] for i in range(3)] == [
        "a.png",
        "b.png",
        "sub/c.jpg",
    ]
    assert client.put("/api/designer/0/designs/d", json=CONFIG).status_code == 200
    assert (tmp_path / "designs" / "d.json").is_file()
    answer = client.post("/api/designer/0/predict", json={"input": {"sample": 0}}).json()
    with Image.open(folder / "a.png") as opened:
        pixels = np.asarray(opened.resize((8, 8), Image.Resampling.BILINEAR), dtype=np.float32)
    x = (torch.from_numpy(np.moveaxis(pixels / 255.0, -1, 0))[None] - 0.5) / 0.25
    with torch.no_grad():
        expected = int(tiny_cnn().eval()(x).argmax())
    assert answer["predictions"][0]["index"] == expected


def test_every_designer_operation_is_in_the_schema(served):
    client, _ = served
    paths = client.get("/api/openapi.json").json()["paths"]
    designer = {p for p in paths if p.startswith("/api/designer")}
    operations = ("explain", "compare", "curves", "predict", "uploads", "layers", "designs")
    for operation in (*operations, "neurons", "neurons/maps", "ablate"):
        assert f"/api/designer/{{designer}}/{operation}" in designer
    body = paths["/api/designer/{designer}/uploads"]["post"]["requestBody"]["content"]
    assert set(body) == {"image/png", "image/jpeg"}


def test_neuron_data_and_channel_maps_equal_the_library(served):
    client, project = served
    body = {"input": {"sample": 6}, "config": CONFIG, "layer": 2, "target": "class", "index": 1}
    answer = client.post("/api/designer/0/neurons", json=body).json()
    x = sample_input(project, 6)
    library = DesignSession(tiny_cnn(), input_shape=(3, 8, 8))
    data = library.neurons(x, CONFIG, 2, target="class", index=1)
    assert answer["layer"] == data.layer and answer["channels"] == 6 and answer["grid"] == [8, 8]
    for key in ("positive", "negative", "activation"):
        np.testing.assert_allclose(answer[key], getattr(data, key), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(answer["matrix"], data.matrix, rtol=1e-6, atol=1e-9)
    maps = client.post(
        "/api/designer/0/neurons/maps", json={k: v for k, v in body.items() if k != "max_positions"}
        | {"channels": [0, 5]},
    ).json()  # fmt: skip
    reference = library.channel_maps(x, CONFIG, 2, [0, 5], target="class", index=1)
    assert [decode(u) for u in maps["relevance"]] == [reference.relevance_png(i) for i in (0, 1)]
    assert [decode(u) for u in maps["activation"]] == [reference.activation_png(i) for i in (0, 1)]


def test_an_ablation_scores_as_a_forward_pass_with_those_channels_zeroed(served):
    from relscope.evaluation import ablate

    client, project = served
    body = {"input": {"sample": 8}, "config": CONFIG, "layer": 3, "channels": [0, 2, 3], "k": 3}
    answer = client.post("/api/designer/0/ablate", json=body).json()
    x = sample_input(project, 8)
    model = tiny_cnn().eval()
    zeroed = ablate(model, x, "3", [0, 2, 3]).output[0]  # module "3": the second ReLU
    top = torch.topk(zeroed, 3)
    assert [p["index"] for p in answer["predictions"]] == top.indices.tolist()
    np.testing.assert_allclose([p["score"] for p in answer["predictions"]], top.values, rtol=1e-5)
    library = DesignSession(tiny_cnn(), input_shape=(3, 8, 8))
    explained, _ = library.ablate(x, CONFIG, 3, [0, 2, 3])
    assert decode(answer["heatmap"]) == explained.heatmap_png()
    intact = client.post("/api/designer/0/explain", json={"input": {"sample": 8}, "config": CONFIG})
    assert answer["target"] == intact.json()["target"]  # the class chosen on the intact model
    assert answer["heatmap"] != intact.json()["heatmap"]


@pytest.mark.parametrize(
    ("path", "extra", "words"),
    [
        ("neurons", {"layer": "nope"}, "nope"),
        ("neurons", {"layer": 99}, "99"),
        ("neurons/maps", {"layer": 2, "channels": [6]}, "channel 6"),
        ("ablate", {"layer": 2, "channels": [9]}, "9"),
        ("ablate", {"layer": 2, "channels": [0], "config": "gradient"}, "LRP"),
    ],
)
def test_bad_neuron_requests_get_a_422(served, path, extra, words):
    client, _ = served
    body = {"input": {"sample": 0}, "config": CONFIG, "channels": [0]} | extra
    if path == "neurons":
        body.pop("channels")
    answer = client.post(f"/api/designer/0/{path}", json=body)
    assert answer.status_code == 422, answer.text
    assert words in answer.json()["detail"]


def test_one_order_of_curves_alone(served):
    client, _ = served
    body = {"input": {"sample": 2}, "configs": [CONFIG], "steps": 4, "orders": ["most"]}
    (row,) = client.post("/api/designer/0/curves", json=body).json()
    both = client.post("/api/designer/0/curves", json=body | {"orders": ["most", "least"]}).json()
    assert row["least"] is None and row["auc"][1] is None
    assert row["most"] == both[0]["most"] and row["auc"][0] == both[0]["auc"][0]
    bad = client.post("/api/designer/0/curves", json=body | {"orders": ["sideways"]})
    assert bad.status_code == 422


def test_a_mask_flips_what_it_covers(served):
    client, project = served
    covered = np.zeros((8, 8), dtype=np.uint8)
    covered[2:5, 1:7] = 255
    uri = "data:image/png;base64," + base64.b64encode(png_bytes(covered)).decode()
    body = {"input": {"sample": 4, "flip": {"mask": uri, "fill": 0.5}}, "k": 3}
    answer = client.post("/api/designer/0/predict", json=body).json()
    x = sample_input(project, 4)
    flipped = flip(x, torch.from_numpy(covered > 0), 0.5)
    with torch.no_grad():
        top = torch.topk(tiny_cnn().eval()(flipped)[0], 3)
    np.testing.assert_allclose([p["score"] for p in answer["predictions"]], top.values, rtol=1e-5)
    overlay = np.zeros((8, 8, 4), dtype=np.uint8)  # a drawn overlay: its opaque pixels
    overlay[2:5, 1:7] = (255, 0, 0, 255)
    drawn = "data:image/png;base64," + base64.b64encode(png_bytes(overlay)).decode()
    body["input"]["flip"]["mask"] = drawn
    assert client.post("/api/designer/0/predict", json=body).json() == answer
    small = "data:image/png;base64," + base64.b64encode(png_bytes(covered[:4])).decode()
    body["input"]["flip"]["mask"] = small
    wrong = client.post("/api/designer/0/predict", json=body)
    assert wrong.status_code == 422 and "4 x 8" in wrong.json()["detail"]
    body["input"]["flip"]["mask"] = "data:image/png;base64,bm90IGEgcG5n"
    assert client.post("/api/designer/0/predict", json=body).status_code == 422
    body["input"]["flip"] |= {"strokes": [{"points": [[1, 1]], "radius": 1}]}
    both = client.post("/api/designer/0/predict", json=body)
    assert both.status_code == 422 and "one of them" in str(both.json()["detail"])


def test_rules_lists_the_unified_presets_with_every_parameter(served):
    client, _ = served
    answer = client.get("/api/designer/rules").json()
    assert {"unified", "zbox", "epsilon", "gamma", "alpha_beta"} <= set(answer["rules"])
    defaults = answer["unified"]["defaults"]
    assert set(defaults) == {
        "alpha", "beta", "eps", "theta0", "theta1", "gamma0", "gamma1", "gamma1p", "gamma1n",
        "gamma2", "include_bias",
    }  # fmt: skip
    presets = answer["unified"]["presets"]
    assert presets["gamma"] == defaults | {
        "eps": 1e-6, "theta1": 1, "gamma1": 1, "gamma1p": 0.25, "include_bias": True
    }  # fmt: skip
    assert presets["flat"]["include_bias"] is False
    assert presets["epsilon"]["eps"] == 0.25 and set(presets) >= {"lrp0", "zplus", "flat"}


@pytest.mark.parametrize(
    ("preset", "rule", "params"),
    [
        ("lrp0", "epsilon", {"eps": 1e-6}),
        ("epsilon", "epsilon", {"eps": 0.25}),
        ("gamma", "gamma", {"gamma": 0.25}),
        ("alpha_beta", "alpha_beta", {"alpha": 2, "beta": 1}),
        ("zplus", "zplus", {}),
        ("wsquare", "wsquare", {}),
        ("flat", "flat", {}),
    ],
)
def test_a_preset_as_unified_parameters_explains_like_its_named_rule(served, preset, rule, params):
    # The page stores a preset as the unified rule with the preset's values; for the
    # non-negative inputs of this model (images in [0, 1], ReLU outputs) they agree.
    client, _ = served
    presets = client.get("/api/designer/rules").json()["unified"]["presets"]

    def relevance(segment):
        config = {"name": "x", "segments": [{"start": 0, "stop": None, **segment}]}
        body = {"input": {"sample": 3}, "config": config, "target": "class", "index": 1}
        answer = client.post("/api/designer/0/explain", json=body | {"values": True}).json()
        return np.asarray(answer["relevance"])

    unified = relevance({"rule": "unified", "params": presets[preset]})
    named = relevance({"rule": rule, "params": params})
    np.testing.assert_allclose(unified, named, rtol=1e-4, atol=1e-7)
    assert np.abs(named).sum() > 0


def test_relevance_that_breaks_down_is_a_warning_naming_the_layer(served):
    client, _ = served
    # alpha = 1e15 on every layer: the relevance overflows float32 on its way to the input.
    config = {"name": "x", "segments": [{"start": 0, "stop": None, "rule": "unified",
              "params": {"alpha": 1e15, "theta1": 1, "gamma1": 1}}]}  # fmt: skip
    answer = client.post("/api/designer/0/explain", json={"input": {"sample": 0}, "config": config})
    assert answer.status_code == 200
    found = answer.json()
    assert found["heatmap"] is None
    (warning,) = found["warnings"]
    assert "NaN or infinite at layer '2 (its rule" in warning


def test_the_command_the_designer_shows_runs_its_design_over_the_dataset(
    served, tmp_path, monkeypatch
):
    import shlex

    client, project = served
    assert client.put("/api/designer/0/designs/shown", json=CONFIG).status_code == 200
    command = client.get("/api/designer/0").json()["command"]
    assert command.startswith("relscope attribute dataset.h5 --model " + MODEL)
    words = shlex.split(command + " --method designs/shown.json --device cpu")
    monkeypatch.chdir(project.parent)  # the line runs from the project folder
    result = CliRunner().invoke(cli, words[1:])
    assert result.exit_code == 0, result.output
    stored = AttributionSet([project.parent / "designed.h5"])
    label = int(images(project).labels()[3])
    body = {"input": {"sample": 3}, "config": "shown", "target": "class", "index": label}
    answer = client.post("/api/designer/0/explain", json=body | {"values": True}).json()
    np.testing.assert_allclose(answer["relevance"], stored.get(3).attribution, rtol=1e-4, atol=1e-6)


def test_compare_keeps_a_configuration_that_breaks_down_as_cells_with_warnings(served):
    # One row whose relevance overflows: its cells have no picture and a warning naming the
    # layer; the other rows share the scale of the finite cells, as if it were not there.
    client, _ = served
    broken = {"name": "broken", "segments": [{"start": 0, "stop": None, "rule": "unified",
              "params": {"alpha": 1e15, "theta1": 1, "gamma1": 1}}]}  # fmt: skip
    columns = [{"input": {"sample": 1}}, {"input": {"sample": 2}, "target": "class", "index": 0}]
    both = client.post(
        "/api/designer/0/compare", json={"configs": [CONFIG, broken], "columns": columns}
    )
    assert both.status_code == 200
    answer = both.json()
    alone = client.post(
        "/api/designer/0/compare", json={"configs": [CONFIG], "columns": columns}
    ).json()
    assert answer["names"] == ["two parts", "broken"]
    assert answer["scale"] == pytest.approx(alone["scale"])
    assert [c["heatmap"] for c in answer["cells"][0]] == [c["heatmap"] for c in alone["cells"][0]]
    for cell in answer["cells"][1]:
        assert cell["heatmap"] is None
        (warning,) = cell["warnings"]
        assert "NaN or infinite at layer '2" in warning
    assert [c["target"] for c in answer["cells"][1]] == [c["target"] for c in answer["cells"][0]]
