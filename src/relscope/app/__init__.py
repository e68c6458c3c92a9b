"""The web application: its HTTP API (``relscope.app.api``) over the loaded projects.

:func:`create_app` builds the FastAPI application for some project files; :func:`serve`
runs it with uvicorn on 127.0.0.1 unless told otherwise. The Explorer's browser front end
is served from the same application once it is built (:func:`frontend_built`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from relscope._version import __version__
from relscope.app import api
from relscope.app.store import ProjectStore

__all__ = ["create_app", "frontend_built", "serve"]

FRONTEND = Path(__file__).parent / "static"


def frontend_built() -> bool:
    """Whether the browser front end's built assets are present."""
    return (FRONTEND / "index.html").is_file()


def create_app(
    projects: Sequence[str | Path], *, allowed_roots: Sequence[str | Path] = ()
) -> FastAPI:
    """The application serving ``projects`` (project files; loaded and validated now)."""
    app = FastAPI(title="relscope", version=__version__, docs_url="/api/docs",
                  openapi_url="/api/openapi.json", redoc_url=None)  # fmt: skip
    app.state.store = ProjectStore(projects, allowed_roots)
    api.install(app)
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
source tree (Node.js 20 and npm are needed). The HTTP API is at <a href="api/docs">/api/docs</a>.
"""


def serve(
    projects: Sequence[str | Path],
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    allowed_roots: Sequence[str | Path] = (),
) -> None:
    """Run the application until interrupted."""
    import uvicorn

    uvicorn.run(create_app(projects, allowed_roots=allowed_roots), host=host, port=port,
                log_level="warning")  # fmt: skip
