"""A real server on 127.0.0.1 and Debian's Chromium driven by Playwright, for browser tests."""

from __future__ import annotations

import json
import socket
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import uvicorn

from relscope.app import create_app, frontend_built

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
# quality.md's flags: no sandbox as root, no GPU, and none of Chromium's own network traffic,
# which this machine's closed network refuses.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def ensure_frontend() -> None:
    """Build the front end if its sources changed (fast when nothing did)."""
    subprocess.run(["bash", str(ROOT / "scripts" / "build_frontend.sh")], check=True)
    assert frontend_built(), "scripts/build_frontend.sh did not produce static/index.html"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def running_server(projects: Sequence[Path], designers: Sequence = ()) -> Iterator[str]:
    """Serve ``projects`` (and ``designers``, :class:`relscope.app.DesignerSource`) with
    uvicorn in a thread; yields the base URL."""
    port = free_port()
    application = create_app(projects, designers=designers)
    config = uvicorn.Config(application, host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive(), "the server thread ended before it started"
        assert time.monotonic() < deadline, "the server did not start within 30 s"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@contextmanager
def chromium() -> Iterator[object]:
    """A headless Debian Chromium (Playwright's own browser download is never used)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()


@contextmanager
def page_of(browser, **options) -> Iterator[object]:
    """A page in a fresh context of ``browser`` (``options``: the context's); the test fails
    if the page raised an uncaught error by the end."""
    context = browser.new_context(**options)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    context.close()
    assert not errors, errors


def call_api(base: str, path: str, body: object = None, method: str | None = None) -> object:
    """The JSON answer (None for an empty one) of ``path`` on the server at ``base``: a POST
    of ``body`` when one is given, else a GET, unless ``method`` says otherwise."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        base + path, data=data, method=method or ("POST" if data is not None else "GET"),
        headers={"content-type": "application/json"},
    )  # fmt: skip
    with urllib.request.urlopen(request) as answer:
        text = answer.read()
    return json.loads(text) if text else None
