"""``relscope design``: the Designer for one model, without a project."""

from __future__ import annotations

from pathlib import Path

import typer

from relscope.cli._common import console, user_errors, warn_if_not_built
from relscope.engine.inputs import parse_floats

EXAMPLES = """
[bold]Examples[/bold]

  relscope design --model torchvision.models:vgg16 --weights vgg16.pt --images photos/
  relscope design --model mypkg.nets:resnet --label-map labels.json \\
      --mean 0.485,0.456,0.406 --std 0.229,0.224,0.225 --port 8081
  relscope design --model relscope.data.builtin:mnist_cnn --input-size 28 28 --mode L

Configurations are kept in DESIGNS/designs/*.json (default: the current folder), in the
format `relscope attribute --method` reads. The server binds to 127.0.0.1 unless --host
says otherwise; the Designer's HTTP API is under /api/designer/.
"""


def register(app: typer.Typer) -> None:
    """Add ``relscope design`` to ``app``."""

    @app.command("design", epilog=EXAMPLES)
    @user_errors
    def design(
        model: str = typer.Option(..., help="Model factory, package.module:factory."),
        weights: Path | None = typer.Option(None, help="Weights file (.pt/.pth/.safetensors)."),
        label_map: Path | None = typer.Option(None, help="Label map JSON (class names)."),
        images: Path | None = typer.Option(
            None, help="Folder of PNG/JPEG images to pick samples from (any layout)."
        ),
        designs: Path = typer.Option(
            Path("."), help="Folder whose designs/ holds the configurations."
        ),
        input_size: tuple[int, int] = typer.Option(
            (224, 224), metavar="HEIGHT WIDTH", help="Model input size images are resized to."
        ),
        mode: str = typer.Option("RGB", help="RGB|L (3 or 1 input channels)."),
        mean: str | None = typer.Option(
            None, help="Per-channel mean to subtract, e.g. 0.5,0.5,0.5"
        ),
        std: str | None = typer.Option(None, help="Per-channel std to divide by."),
        device: str = typer.Option("cpu", help="cpu|cuda|cuda:N"),
        allow_pickle: bool = typer.Option(
            False, "--allow-pickle", help="Unpickle the weights file (runs its code: trusted only)."
        ),
        host: str = typer.Option("127.0.0.1", help="Interface to bind (default: this machine)."),
        port: int = typer.Option(8080, min=1, max=65535, help="TCP port."),
    ) -> None:
        """Serve the Designer for one model (single-sample LRP design, HTTP API under
        /api/designer/)."""
        from relscope.app import DesignerSource, serve

        source = DesignerSource(
            model, weights=weights, label_map=label_map, images=images, designs=designs,
            input_size=input_size, mode=mode, mean=_tuple(parse_floats(mean, "--mean")),
            std=_tuple(parse_floats(std, "--std")), device=device, allow_pickle=allow_pickle,
            preload=True,
        )  # fmt: skip

        def announce(url: str) -> None:
            warn_if_not_built(url)
            console.print(f"Designing {model}: open {url} (API: {url}api/designer/0; Ctrl-C stops)")

        serve([], host=host, port=port, designers=[source], announce=announce)


def _tuple(values: list[float] | None) -> tuple[float, ...] | None:
    return None if values is None else tuple(values)
