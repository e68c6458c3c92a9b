"""``relscope serve``: the web application over one or more project files."""

from __future__ import annotations

from pathlib import Path

import typer

from relscope.cli._common import console, user_errors, warn_if_not_built

EXAMPLES = """
[bold]Examples[/bold]

  relscope serve relscope-demo/project.yaml
  relscope serve a/project.yaml b/project.yaml --port 8081
  relscope serve shared/project.yaml --allow-root /data/imagenet --host 0.0.0.0

The server binds to 127.0.0.1 unless --host says otherwise; it serves only files the
projects reference. The HTTP API is under /api/, its OpenAPI schema at /api/openapi.json.
Projects whose model is a package.module:factory reference are also served in the
Designer (/api/designer/), their configurations kept in the project folder's designs/.
"""


def register(app: typer.Typer) -> None:
    """Add ``relscope serve`` to ``app``."""

    @app.command("serve", epilog=EXAMPLES)
    @user_errors
    def serve(
        projects: list[Path] = typer.Argument(..., metavar="PROJECT...", help="Project files."),
        host: str = typer.Option("127.0.0.1", help="Interface to bind (default: this machine)."),
        port: int = typer.Option(8080, min=1, max=65535, help="TCP port."),
        allow_root: list[Path] = typer.Option(
            [], help="Folder outside a project folder that its files may come from."
        ),
    ) -> None:
        """Serve projects in the Explorer web application, and in the Designer those naming a
        model (HTTP API under /api/)."""
        from relscope.app import serve as serve_projects

        def announce(url: str) -> None:
            warn_if_not_built(url)
            console.print(f"Serving {len(projects)} project(s): open {url} (Ctrl-C stops)")

        serve_projects(projects, host=host, port=port, allowed_roots=allow_root, announce=announce)
