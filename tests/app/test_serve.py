"""``relscope serve``: a real uvicorn server on 127.0.0.1 answering the API."""

from __future__ import annotations

import json
import os
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
