"""The layer rule of the architecture, checked on the source: lower layers never import
higher ones; ``render`` and ``analysis`` know nothing of PyTorch; ``attribution`` knows
nothing of files; ``engine`` knows nothing of terminals or HTTP; the command modules do not
import each other; the package's module-level imports have no cycle."""

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


@pytest.mark.parametrize("path", sorted((SOURCE / "engine").rglob("*.py")), ids=lambda p: p.name)
def test_engine_prints_nothing(path):
    # Notes reach the caller through the Progress callbacks, never a terminal.
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            assert node.func.id != "print", f"engine/{path.name}:{node.lineno} calls print"


#: Command modules share code only through ``_common``; ``main`` registers them all.
CLI_SHARED = {"relscope.cli._common"}


@pytest.mark.parametrize(
    "path",
    [p for p in sorted((SOURCE / "cli").glob("*.py")) if p.stem not in ("main", "_common")],
    ids=lambda p: p.name,
)
def test_command_modules_do_not_import_each_other(path):
    for module in imports(path):
        if module.startswith("relscope.cli"):
            assert module in CLI_SHARED, f"cli/{path.name} imports {module}"


def module_of(path: Path) -> str:
    parts = path.relative_to(SOURCE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULE_NAMES = {module_of(path): path for path in MODULES}


def _is_type_checking(node: ast.stmt) -> bool:
    test = getattr(node, "test", None)
    return isinstance(node, ast.If) and (
        (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING")
        or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")
    )


def runtime_imports(path: Path) -> set[str]:
    """The ``relscope`` modules ``path`` imports, at module level or inside its functions and
    classes (not under ``if TYPE_CHECKING``, which never runs); ``from package import name``
    counts the submodule ``package.name`` when there is one, else the package."""
    own = module_of(path)
    package = own if path.name == "__init__.py" else own.rpartition(".")[0]
    found: set[str] = set()

    def visit(statements: list[ast.stmt]) -> None:
        for node in statements:
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")
                    anchor = anchor[: len(anchor) - (node.level - 1)]
                    base = ".".join([*anchor, base] if base else anchor)
                for alias in node.names:
                    full = f"{base}.{alias.name}"
                    found.add(full if full in MODULE_NAMES else base)
            elif not _is_type_checking(node):
                # Function bodies count too: an import deferred into a function to dodge a
                # cycle is still a cycle (composites <-> lrp was one).
                for field in ("body", "orelse", "finalbody"):
                    visit([n for n in getattr(node, field, []) if isinstance(n, ast.stmt)])
                for handler in getattr(node, "handlers", []):
                    visit(handler.body)

    visit(ast.parse(path.read_text(encoding="utf-8")).body)
    return {name for name in found if name in MODULE_NAMES and name != own}


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (``[a, b, ..., a]``) per strongly connected group of modules (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                connect(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.add(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(group)

    for node in sorted(graph):
        if node not in index:
            connect(node)
    cycles = []
    for group in groups:
        start = min(group)
        # Breadth-first inside the group: the shortest way from ``start`` back to it.
        paths = {start: [start]}
        queue = [start]
        while queue:
            node = queue.pop(0)
            for target in sorted(graph[node] & group):
                if target == start:
                    cycles.append([*paths[node], start])
                    queue = []
                    break
                if target not in paths:
                    paths[target] = [*paths[node], target]
                    queue.append(target)
    return cycles


def test_the_package_has_no_import_cycle():
    graph = {name: runtime_imports(path) for name, path in MODULE_NAMES.items()}
    assert graph["relscope.cli.main"] >= {"relscope.cli.attribute", "relscope.cli.demo"}
    # imports inside functions count (the torch-free dataset defers this one)
    assert "relscope.data.dataset.tensors" in graph["relscope.data.dataset.base"]
    cycles = import_cycles(graph)
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_the_cycle_finder_reports_a_cycle():
    graph = {"a": {"b"}, "b": {"c", "d"}, "c": {"a"}, "d": set(), "e": {"e", "a"}}
    assert import_cycles(graph) == [["a", "b", "c", "a"]]
