"""Entry point of the ``relscope`` executable; each command lives in its own module."""

from __future__ import annotations

import typer

from relscope._version import __version__
from relscope.cli import analyze, attribute, demo, design, project, run, serve

app = typer.Typer(
    name="relscope",
    help="Dataset-wide explainable AI for PyTorch: attribute, analyze, explore.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"relscope {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Dataset-wide explainable AI for PyTorch: attribute, analyze, explore."""


attribute.register(app)
analyze.register(app)
project.register(app)
run.register(app)
serve.register(app)
design.register(app)
demo.register(app)


def main() -> None:
    """Run the command line."""
    app()
