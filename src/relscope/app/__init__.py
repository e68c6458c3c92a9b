"""The web application: its HTTP API (``relscope.app.api``) over the loaded projects.

:func:`create_app` builds the FastAPI application for some project files; :func:`serve`
runs it with uvicorn on 127.0.0.1 unless told otherwise. The Explorer's browser front end
is served from the same application once it is built (:func:`frontend_built`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from fastapi import FastAPI

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
    return app


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
