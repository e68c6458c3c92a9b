"""The web application: its HTTP API (``relscope.app.api``) over the loaded projects.

:func:`create_app` builds the FastAPI application for some project files; :func:`serve`
runs it with uvicorn on 127.0.0.1 unless told otherwise. The Explorer's browser front end
is served from the same application once it is built (:func:`frontend_built`).
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path

from fastapi import FastAPI, Request, Response
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from relscope._version import __version__
from relscope.app import api, designer_api
from relscope.app.designers import DesignerSource, DesignerStore
from relscope.app.store import ProjectStore
from relscope.errors import ConfigError

__all__ = ["DesignerSource", "check_port", "create_app", "frontend_built", "serve"]

FRONTEND = Path(__file__).parent / "static"
# Only this server's own scripts, styles, images and API; nothing framed, nothing sniffed.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data: blob:; connect-src 'self'; object-src 'none'; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def frontend_built() -> bool:
    """Whether the browser front end's built assets are present."""
    return (FRONTEND / "index.html").is_file()


def create_app(
    projects: Sequence[str | Path],
    *,
    allowed_roots: Sequence[str | Path] = (),
    designers: Sequence[DesignerSource] = (),
) -> FastAPI:
    """The application serving ``projects`` (project files; loaded and validated now): the
    Explorer, and the Designer for those naming a model and for the ``designers`` given."""
    # No /docs page: FastAPI's loads Swagger UI from a CDN, and the application must work
    # without internet access; the schema itself is served.
    store = ProjectStore(projects, allowed_roots)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        threading.Thread(target=store.warm, name="relscope-warm", daemon=True).start()
        yield
        store.close()

    app = FastAPI(title="relscope", version=__version__, docs_url=None,
                  openapi_url="/api/openapi.json", redoc_url=None, lifespan=lifespan)  # fmt: skip
    app.state.store = store
    api.install(app)
    designer_api.install(app, DesignerStore(store, designers))

    @app.middleware("http")
    async def security_headers(request: Request, call_next) -> Response:
        response = await call_next(request)
        response.headers.update(SECURITY_HEADERS)
        return response

    if frontend_built():
        # Mounted last, so /api/ keeps precedence; StaticFiles refuses paths out of FRONTEND.
        app.mount("/", StaticFiles(directory=FRONTEND, html=True), name="explorer")
    else:

        @app.get("/", response_class=HTMLResponse, include_in_schema=False)
        def not_built() -> str:
            return _NOT_BUILT

    return app


_NOT_BUILT = """<!doctype html><title>relscope</title><p>The Explorer front end is not built.
Run <code>make demo</code> or <code>bash scripts/build_frontend.sh</code> in the relscope
source tree (Node.js 20 and npm are needed). The HTTP API's schema is at
<a href="api/openapi.json">/api/openapi.json</a>.
"""


def check_port(host: str, port: int) -> None:
    """Raise :class:`ConfigError` if ``host:port`` cannot be listened on (e.g. in use)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as error:
        raise ConfigError(f"--host {host!r} is not an address of this machine: {error}") from None
    family, _, _, _, address = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as error:
            raise ConfigError(
                f"cannot listen on {host}:{port} ({error.strerror}); choose another --port"
            ) from None


def serve(
    projects: Sequence[str | Path],
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    allowed_roots: Sequence[str | Path] = (),
    designers: Sequence[DesignerSource] = (),
    announce: Callable[[str], None] | None = None,
) -> None:
    """Run the application until interrupted; ``announce`` gets the base URL first."""
    import uvicorn

    application = create_app(projects, allowed_roots=allowed_roots, designers=designers)
    check_port(host, port)
    if announce is not None:
        shown = f"[{host}]" if ":" in host else host
        announce(f"http://{shown}:{port}/")
    uvicorn.run(application, host=host, port=port, log_level="warning")
