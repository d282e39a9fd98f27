"""The package's layers: every import of ``fedsim/`` points down (or sideways), and the top-level
subpackages import each other without cycles.

The order is written once, in :data:`LAYERS` (lowest first). Every ``import`` statement counts,
including those inside functions and under ``TYPE_CHECKING``: a lazy import upwards is still an
upward dependency. A new top-level module or subpackage must be added to a layer here.
"""

from __future__ import annotations

import ast
import subprocess
from collections import defaultdict
from pathlib import Path

from tests.helpers import PYTHON, REPO, subprocess_env

PACKAGE = REPO / "fedsim"

LAYERS: list[set[str]] = [
    {"errors", "_version", "seeding", "params"},  # base: no fedsim imports beyond this layer
    {"compression", "topology", "privacy", "robustness", "systems"},  # math: pure functions on tensors
    {"data", "models"},
    {"client"},  # client work: a pure function of params, data, hyperparameters, generator, state
    {"runtimes"},  # serial, vectorized, ray: know nothing of algorithms
    {"algorithms"},  # what a round does; the runtime is opaque
    {"config"},  # pydantic sections with build()
    {"experiment", "output", "checkpoint", "plotting", "evaluation"},
    {"studies", "tracking", "deploy", "cli", "__init__", "__main__"},  # edge; __init__ is the package's lazy API
]
RANK = {name: rank for rank, layer in enumerate(LAYERS) for name in layer}


def _unit(module: str) -> str:
    """The top-level unit of ``fedsim.a.b`` (``a``); the package itself is ``__init__``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(dotted: str) -> bool:
    path = REPO.joinpath(*dotted.split("."))
    return path.is_dir() or path.with_suffix(".py").is_file()


def _imports(path: Path, source: str | None = None) -> set[str]:
    """Every fedsim module ``path`` imports, at any depth of the file (functions, TYPE_CHECKING).

    ``from pkg import x`` is a dependency on ``pkg.x`` when x is a submodule, else on ``pkg``
    (so ``from fedsim import __version__`` depends on the package root, the top layer).
    """
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(source if source is not None else path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                module = ".".join(parts[: len(parts) - node.level + 1] + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            for alias in node.names:
                found.add(f"{module}.{alias.name}" if _is_module(f"{module}.{alias.name}") else module)
    return {m for m in found if m == "fedsim" or m.startswith("fedsim.")}


def import_graph() -> dict[str, set[str]]:
    """Top-level unit -> the other top-level units it imports."""
    graph: dict[str, set[str]] = defaultdict(set)
    for path in sorted(PACKAGE.rglob("*.py")):
        source = _unit(_module_name(path))
        graph[source]  # a unit that imports nothing is still a node
        graph[source].update(target for target in map(_unit, _imports(path)) if target != source)
    return dict(graph)


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` (as a path that returns to its start), or None (depth-first search)."""
    state: dict[str, int] = {}  # 1: on the stack, 2: done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def test_find_cycle_finds_one() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_every_unit_has_a_layer() -> None:
    units = {_unit(_module_name(p)) for p in PACKAGE.rglob("*.py")}
    missing = sorted(units - set(RANK))
    assert not missing, f"add {missing} to a layer in tests/test_layers.py"


def test_no_upward_import() -> None:
    upward = [
        f"{src} (layer {RANK[src]}) imports {dst} (layer {RANK[dst]})"
        for src, targets in import_graph().items() for dst in sorted(targets)
        if src in RANK and dst in RANK and RANK[dst] > RANK[src]
    ]
    assert not upward, "upward imports:\n" + "\n".join(upward)


def test_no_cycle_between_top_level_units() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def _runtime_imports(path: Path) -> set[str]:
    """The fedsim modules ``path`` imports when it is imported: module-level statements only."""
    body = ast.parse(path.read_text()).body
    top = ast.Module(body=[n for n in body if isinstance(n, (ast.Import, ast.ImportFrom))], type_ignores=[])
    name = _module_name(path)
    # importing an ancestor package is a no-op while it is being imported
    return {m for m in _imports(path, ast.unparse(top)) if m != name and not name.startswith(m + ".")}


def test_no_module_level_import_cycle() -> None:
    """No two modules import each other at import time (the config/schema <-> config/decentralized kind)."""
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {name: {m for m in _runtime_imports(path) if m in modules} for name, path in modules.items()}
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_walker_sees_lazy_relative_and_type_checking_imports() -> None:
    """The graph is only as good as the walker: imports inside functions and TYPE_CHECKING count."""
    probe = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from fedsim.algorithms.base import Algorithm\n"
        "def f():\n    from fedsim.experiment import run\n    from ..config import schema\n    from . import partition\n"
        "    from fedsim import output\n"
    )
    found = _imports(PACKAGE / "data" / "probe.py", probe)
    assert found == {"fedsim.algorithms.base", "fedsim.experiment", "fedsim.config.schema", "fedsim.data.partition", "fedsim.output"}
    assert {_unit(m) for m in found} == {"algorithms", "experiment", "config", "data", "output"}


def test_version_imports_no_layer_it_does_not_need() -> None:
    """``python -m fedsim --version`` loads the CLI and the base layer, nothing that builds a run."""
    probe = (
        "import runpy, sys\n"
        "sys.argv = ['fedsim', '--version']\n"
        "try:\n    runpy.run_module('fedsim', run_name='__main__')\n"
        "except SystemExit as exc:\n    assert not exc.code, exc.code\n"
        "print(' '.join(sorted(m for m in sys.modules if m.startswith('fedsim'))))\n"
    )
    res = subprocess.run([PYTHON, "-c", probe], capture_output=True, text=True, env=subprocess_env(), timeout=120)
    assert res.returncode == 0, res.stderr
    loaded = {_unit(m) for m in res.stdout.splitlines()[-1].split()}
    allowed = LAYERS[0] | LAYERS[1] | {"cli", "__init__", "__main__"}
    assert loaded - allowed == set(), f"--version imports {sorted(loaded - allowed)}"


def test_test_folders_are_packages() -> None:
    """tests/ mirrors the package; each folder is a package so equal file names in two folders never clash."""
    folders = {p.parent for p in (REPO / "tests").rglob("test_*.py")}
    missing = sorted(str(f.relative_to(REPO)) for f in folders if not (f / "__init__.py").is_file())
    assert not missing, f"add an __init__.py to {missing}"
