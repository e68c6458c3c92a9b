"""The layer rule of the architecture, checked on the source: lower layers never import
higher ones; ``render`` and ``analysis`` know nothing of PyTorch; ``attribution`` knows
nothing of files; ``engine`` knows nothing of terminals or HTTP."""

import ast
from pathlib import Path

import pytest

SOURCE = Path(__file__).parents[1] / "src" / "relscope"
RANK = {
    "render": 0,
    "attribution": 1,
    "evaluation": 2,
    "analysis": 3,
    "data": 4,
    "engine": 5,
    "app": 6,
    "cli": 7,
}
# usable from every layer
SHARED = {"errors", "registry", "_atomic", "_version", "__init__", "__main__"}
FORBIDDEN = {
    "render": {"torch"},
    "analysis": {"torch"},
    "attribution": {"h5py", "yaml"},
    "engine": {"typer", "rich", "fastapi", "uvicorn", "starlette"},
}


def imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def layer_of(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "relscope" or len(parts) < 2 or parts[1] in SHARED:
        return None
    return parts[1]


MODULES = sorted(SOURCE.rglob("*.py"))


def test_every_layer_directory_is_known():
    for path in SOURCE.iterdir():
        if path.is_dir() and not path.name.startswith("__"):
            assert path.name in RANK, f"{path.name} is not a known layer"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(SOURCE)))
def test_module_respects_the_layers(path):
    relative = path.relative_to(SOURCE)
    own = relative.parts[0] if len(relative.parts) > 1 else None
    for module in imports(path):
        target = layer_of(module)
        if own is None:
            # Top-level modules (errors, version, __main__) may only be imported, except the
            # package entry points that start the command line.
            assert target in (None, "cli"), f"{relative} imports {module}"
            continue
        if target is not None:
            assert RANK[target] <= RANK[own], f"{relative} ({own}) imports higher layer {module}"
        root = module.split(".")[0]
        assert root not in FORBIDDEN.get(own, set()), f"{relative} must not import {root}"
