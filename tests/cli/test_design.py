"""``relscope design``: the Designer for one model without a project, on 127.0.0.1."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
from PIL import Image
from typer.testing import CliRunner

from relscope.cli.main import app

TESTS = Path(__file__).resolve().parents[1]
MODEL = "support.designer_models:tiny_cnn"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def fetch(url, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data, {"content-type": "application/json"})
    with urllib.request.urlopen(request) as answer:
        return json.load(answer)


def test_design_serves_a_model_with_a_folder_of_images(tmp_path):
    images = tmp_path / "photos"
    images.mkdir()
    rng = np.random.default_rng(0)
    for name in ("cat.png", "dog.jpg"):
        Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(images / name)
    port = free_port()
    env = os.environ | {"COLUMNS": "200", "PYTHONPATH": f"{TESTS}{os.pathsep}"
                        + os.environ.get("PYTHONPATH", "")}  # fmt: skip
    server = subprocess.Popen(
        [sys.executable, "-m", "relscope", "design", "--model", MODEL, "--images", str(images),
         "--input-size", "8", "8", "--designs", str(tmp_path), "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}/api/designer"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                listed = fetch(base)
                break
            except OSError:
                assert server.poll() is None, server.stderr.read()
                assert time.monotonic() < deadline, "the server did not answer within 60 s"
                time.sleep(0.3)
        assert listed == [
            {"id": 0, "name": MODEL, "project": None, "loaded": True, "problem": None}
        ]
        assert fetch(f"{base}/0")["samples"] == 2
        assert fetch(f"{base}/0/samples/1")["label"] == "dog.jpg"
        explained = fetch(f"{base}/0/explain", {"input": {"sample": 0}, "config": "epsilon"})
        assert explained["heatmap"].startswith("data:image/png;base64,")
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_design_refuses_a_bad_model_or_folder_in_one_line(tmp_path):
    runner = CliRunner()
    result = runner.invoke(app, ["design", "--model", "no_such_module:factory"])
    assert result.exit_code == 2 and "no_such_module" in result.output
    assert len(result.output.strip().splitlines()) == 1
    empty = tmp_path / "empty"
    empty.mkdir()
    result = runner.invoke(
        app, ["design", "--model", "relscope.data.builtin:mnist_cnn", "--images", str(empty)]
    )
    assert result.exit_code == 2 and "no PNG or JPEG" in result.output
    result = runner.invoke(
        app, ["design", "--model", "relscope.data.builtin:mnist_cnn", "--mean", "a,b"]
    )
    assert result.exit_code == 2 and "--mean" in result.output
