"""The real ViRelAy 0.6.1 server, started from its own environment, for interoperability tests.

ViRelAy is a test tool, never a dependency of relscope: ``scripts/setup_virelay.sh`` (run by
``make setup-test``) installs it into ``.venv-virelay``. The server is ViRelAy's WSGI
application under gunicorn, ViRelAy's documented deployment; its ``virelay`` command runs the
same Flask application but also opens a web browser. Endpoints, from ViRelAy's
``virelay/server.py``::

    /api/projects                                        projects (id, name, model, dataset)
    /api/projects/<id>                                   analysis methods, their categories,
                                                         clusterings and embeddings
    /api/projects/<id>/analyses/<method>?category=&clustering=&embedding=
    /api/projects/<id>/dataset/<index>                   sample metadata
    /api/projects/<id>/dataset/<index>/image             the sample as a JPEG
    /api/projects/<id>/attributions?indices=1,2&imageMode=input|attribution|overlay
    /api/projects/<id>/attributions/<index>              one attribution and its picture URLs
    /api/projects/<id>/attributions/<index>/heatmap?colorMap=&superimpose=True|False
    /api/color-maps                                      colour maps and their preview URLs

The server turns ``-`` into ``_`` in ``<method>`` and lists analysis names with ``_`` shown as
``-``, so the name it lists is the one to request.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import httpx
from torch import nn

from support.browser import free_port

ROOT = Path(__file__).resolve().parents[2]
VENV = ROOT / ".venv-virelay"
GUNICORN = VENV / "bin" / "gunicorn"
START_TIMEOUT = 60.0


class VirelayStartError(RuntimeError):
    """The server exited, or did not answer in time; the message holds its log."""


def missing_reason() -> str | None:
    """Why the ViRelAy server cannot be started here, or None when it can."""
    if not GUNICORN.is_file():
        return (
            f"ViRelAy 0.6.1 is not installed in {VENV.name} "
            "(make setup-test runs scripts/setup_virelay.sh)"
        )
    return None


@contextmanager
def running_virelay(projects: Sequence[Path]) -> Iterator[httpx.Client]:
    """Serve ``projects`` with ViRelAy on a free port of 127.0.0.1; yields a client for it.

    The server is stopped on leaving, whatever happened. Raises :class:`VirelayStartError`
    with the server's log when it exits or does not answer ``/api/projects`` in time.
    """
    port = free_port()
    environment = os.environ | {
        # ViRelAy's own configuration: the project files, colon-separated.
        "VIRELAY_PROJECTS": ":".join(str(Path(p).resolve()) for p in projects),
        "MPLBACKEND": "Agg",
    }
    command = [
        str(GUNICORN), "--bind", f"127.0.0.1:{port}", "--workers", "1", "--timeout", "120",
        "virelay.application:run_wsgi_app()",
    ]  # fmt: skip
    with tempfile.TemporaryFile() as log:
        server = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env=environment, cwd=ROOT
        )
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60.0) as client:
                _wait(server, client, log)
                yield client
        finally:
            server.terminate()
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait(timeout=15)


def _wait(server: subprocess.Popen[bytes], client: httpx.Client, log: IO[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise VirelayStartError(_text(log))
        try:
            if client.get("/api/projects").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise VirelayStartError(f"no answer within {START_TIMEOUT:.0f} s\n{_text(log)}")


def _text(log: IO[bytes]) -> str:
    log.seek(0)
    return log.read().decode(errors="replace")


def rgb_cnn(num_classes: int = 3) -> nn.Module:
    """A small CNN for 3 x 12 x 16 inputs, the model of the interoperability project."""
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(8 * 6 * 8, num_classes),
    )
