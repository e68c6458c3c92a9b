"""``relscope serve``: a real uvicorn server on 127.0.0.1 answering the API."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request

from support.projects import make_project_folder


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_serve_binds_to_localhost_and_answers(tmp_path):
    project = make_project_folder(tmp_path / "p")
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "relscope", "serve", str(project), "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=os.environ | {"COLUMNS": "200"},
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/projects") as answer:
                    projects = json.load(answer)
                break
            except OSError:
                assert server.poll() is None, server.stderr.read()
                assert time.monotonic() < deadline, "the server did not answer within 60 s"
                time.sleep(0.3)
        assert projects[0]["analyses"] == ["spray"]
        # Bound to the loopback interface only.
        bound = _listening(port)
        assert bound and all(address.startswith("127.0.0.1") for address in bound), bound
    finally:
        server.terminate()
        server.wait(timeout=30)


def _listening(port: int) -> list[str]:
    """Local addresses listening on ``port`` (from /proc/net/tcp; IPv4)."""
    rows = []
    with open("/proc/net/tcp") as table:
        for line in table.readlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.split(":")
            if int(hex_port, 16) == port and state == "0A":  # LISTEN
                octets = [str(int(address[i : i + 2], 16)) for i in range(6, -2, -2)]
                rows.append(".".join(octets))
    return rows


def test_serve_refuses_a_missing_project_in_one_line(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "relscope", "serve", str(tmp_path / "none.yaml")],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.startswith("relscope: error:") and result.stderr.count("\n") == 1


def test_a_port_in_use_is_a_one_line_error(tmp_path):
    import pytest

    from relscope.app import check_port
    from relscope.errors import ConfigError

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError, match=rf"cannot listen on 127\.0\.0\.1:{port} .*--port"):
            check_port("127.0.0.1", port)
    check_port("127.0.0.1", port)  # free again
    with pytest.raises(ConfigError, match="not an address"):
        check_port("no-such-host.invalid", port)


def test_the_front_end_is_served_with_the_api_and_nothing_outside_it(tmp_path, monkeypatch):
    import warnings

    import relscope.app as application
    from support.browser import ensure_frontend

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
        from fastapi.testclient import TestClient

    ensure_frontend()
    project = make_project_folder(tmp_path / "p")
    client = TestClient(application.create_app([project]))
    page = client.get("/")
    assert page.status_code == 200 and '<div id="plot">' in page.text
    script = re.search(r'src="\./(assets/[^"]+\.js)"', page.text).group(1)
    assert client.get("/" + script).headers["content-type"].startswith("text/javascript")
    assert client.get("/api/projects").json()[0]["name"] == "fixture"
    for path in ("/", "/api/projects", "/" + script):
        headers = client.get(path).headers
        assert "script-src 'self';" in headers["content-security-policy"], path
        assert headers["x-content-type-options"] == "nosniff"
    # No Swagger page (it would load from a CDN); the schema is served.
    assert client.get("/api/docs").status_code == 404
    assert client.get("/api/openapi.json").json()["info"]["title"] == "relscope"
    for attempt in ("/..%2f__init__.py", "/assets/..%2f..%2fapi.py", "/%2e%2e/%2e%2e/etc/passwd"):
        answer = client.get(attempt)
        assert answer.status_code == 404 and "import" not in answer.text, attempt

    # Without a build, "/" says how to build it instead of a bare 404.
    monkeypatch.setattr(application, "FRONTEND", tmp_path / "missing")
    client = TestClient(application.create_app([project]))
    assert "scripts/build_frontend.sh" in client.get("/").text


def test_the_server_opens_the_project_files_in_the_background_at_start(tmp_path):
    import warnings

    from relscope.app import create_app

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
        from fastapi.testclient import TestClient

    app = create_app([make_project_folder(tmp_path / "p")])
    served = app.state.store.projects[0]
    assert served._dataset is None and served._attributions is None  # loading stays lazy
    with TestClient(app):  # runs the start-up
        deadline = time.monotonic() + 30
        while served._dataset is None or served._attributions is None:
            assert time.monotonic() < deadline, "the files were not opened within 30 s"
            time.sleep(0.05)
    assert served._dataset is None  # closed at shutdown


def test_serve_and_demo_say_how_to_build_a_missing_front_end(tmp_path, monkeypatch, capsys):
    import relscope.app as application
    from relscope.cli.serve import warn_if_not_built
    from support.browser import ensure_frontend

    monkeypatch.setenv("COLUMNS", "300")
    monkeypatch.setattr(application, "FRONTEND", tmp_path / "missing")
    warn_if_not_built("http://127.0.0.1:8080/")
    said = " ".join(capsys.readouterr().out.split())
    assert "front end is not built: run `make frontend`" in said
    assert "http://127.0.0.1:8080/api/openapi.json" in said
    monkeypatch.undo()
    ensure_frontend()
    warn_if_not_built("http://127.0.0.1:8080/")
    assert capsys.readouterr().out == ""
