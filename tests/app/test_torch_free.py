"""Serving a project never loads PyTorch: the Explorer's server reads HDF5 and renders with
``relscope.render`` (NumPy only), so it starts fast on machines without torch installed."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from support.projects import make_project_folder

SERVE = textwrap.dedent(
    """
    import sys
    from fastapi.testclient import TestClient
    from relscope.app import create_app

    client = TestClient(create_app([sys.argv[1]]))
    category = client.get("/api/projects/0/analyses/spray/categories").json()[0]["name"]
    base = "/api/projects/0"
    for path in (
        "/api/projects",
        f"{base}/labels",
        f"{base}/analyses/spray/categories/{category}",
        f"{base}/samples/0",
        f"{base}/samples/0/image.png",
        f"{base}/samples/0/heatmap.png",
        f"{base}/samples/0/overlay.png",
        "/api/colormaps",
    ):
        response = client.get(path)
        assert response.status_code == 200, (path, response.status_code, response.text[:200])
    loaded = sorted(name for name in sys.modules if name == "torch" or name.startswith("torch."))
    print("TORCH" if loaded else "NO-TORCH", loaded[:5])
    """
)


def test_serving_a_project_does_not_import_torch(tmp_path):
    project = make_project_folder(tmp_path)
    done = subprocess.run(
        [sys.executable, "-c", SERVE, str(project)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith("NO-TORCH"), done.stdout
