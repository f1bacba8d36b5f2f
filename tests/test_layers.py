"""The layer rule, checked from the import graph of `src/gcpjobs` (read statically with `ast`).

The layers, lowest first. A module may import modules of its own layer and of the layers
below it (`BELOW`, followed transitively), never one above or beside it:

    ground        gcpjobs (the package: lazy re-exports only), core/ (poll, rate limits,
                  state-change events), states, errors, results, paths, kinds, history
    specs         pydantic models; validation happens here, once
    protos        spec -> request protos, and their preview
    clients       async wrappers over the official GAPIC clients
    watch         the shared watchers (jobs, log lines)
    steps         remote functions
    integrations  Prefect workers
    emulator      beside the client side: only ground and specs below it
    testing       for users' own tests: an in-process emulator and the target to reach it
    cli           on top of everything

This module is the one place the order is written down; docs/architecture.md describes it.

What counts as an import: every `import` and `from ... import` in a module, at any depth
(an import inside a function is a lazy dependency, but a dependency all the same), except
the ones under `if TYPE_CHECKING:`. Those never run, so they neither make import circles nor
couple layers at run time; they only let an annotation name a type (the package's own
`__init__` names every public type that way). `from pkg import name` counts as an import of
the module `pkg.name` when that is a module, else of `pkg`.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import gcpjobs

PACKAGE_DIR = Path(gcpjobs.__file__).parent

# layer -> the layers right below it (what it may import besides itself, transitively).
BELOW: dict[str, tuple[str, ...]] = {
    "ground": (),
    "specs": ("ground",),
    "protos": ("specs",),
    "clients": ("protos",),
    "watch": ("clients",),
    "steps": ("watch",),
    "integrations": ("steps",),
    "emulator": ("specs",),
    "testing": ("clients", "emulator"),
    "cli": ("integrations", "emulator"),
}

# module (or package prefix) -> layer; the longest matching prefix wins.
MODULE_LAYERS: dict[str, str] = {
    "gcpjobs": "ground",
    "gcpjobs.specs": "specs",
    "gcpjobs.protos": "protos",
    "gcpjobs.clients": "clients",
    "gcpjobs.watch": "watch",
    "gcpjobs.steps": "steps",
    "gcpjobs.integrations": "integrations",
    "gcpjobs.emulator": "emulator",
    "gcpjobs.testing": "testing",
    "gcpjobs.cli": "cli",
}

# The one import DESIGN.md allows against the rule: "the client side never imports the
# emulator, except the one place that auto-starts it". Nothing else goes here.
SANCTIONED: dict[tuple[str, str], str] = {
    ("gcpjobs.clients.embedded", "gcpjobs.emulator.config"): "auto-starts the emulator",
    ("gcpjobs.clients.embedded", "gcpjobs.emulator.control"): "auto-starts the emulator",
}

# Known violations, each to be removed (the test fails once one is gone, so that the entry
# goes too). They are left out of the circle check as well; nothing may be added here.
TO_BE_REMOVED: dict[tuple[str, str], str] = {
}

ALLOWED = {**SANCTIONED, **TO_BE_REMOVED}

def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement at any depth, skipping the bodies of `if TYPE_CHECKING:`."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                yield from _imports(ast.Module(body=[child], type_ignores=[]))
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        yield from _imports(node)


def _owner(name: str, modules: dict[str, Path]) -> str | None:
    """The module of ours that `name` (a module or a name in one) lives in, if any."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def import_graph() -> dict[str, set[str]]:
    """module -> the modules of the package it imports (at run time, at any depth)."""
    modules = _modules()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in _imports(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, *([base] if base else [])])
                for alias in node.names:
                    full = f"{base}.{alias.name}"
                    targets.append(full if full in modules else base)
            for target in targets:
                owner = _owner(target, modules)
                if owner is not None and owner != name:
                    graph[name].add(owner)
    return graph


def layer_of(module: str) -> str:
    prefix = module
    while prefix not in MODULE_LAYERS:
        prefix = prefix.rpartition(".")[0]
    return MODULE_LAYERS[prefix]


def _reachable(layer: str) -> set[str]:
    seen = {layer}
    todo = [layer]
    while todo:
        for lower in BELOW[todo.pop()]:
            if lower not in seen:
                seen.add(lower)
                todo.append(lower)
    return seen


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One chain per strongly connected component with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component: set[str] = set()
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.add(top)
                if top == node:
                    break
            if len(component) > 1:
                components.append(component)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return [_chain(component, graph) for component in components]


def _chain(component: set[str], graph: dict[str, set[str]]) -> list[str]:
    """A shortest circle through the component's first module: a -> b -> ... -> a."""
    start = min(component)
    paths: dict[str, list[str]] = {start: [start]}
    todo = [start]
    while todo:
        node = todo.pop(0)
        for nxt in sorted(graph[node] & component):
            if nxt == start:
                return [*paths[node], start]
            if nxt not in paths:
                paths[nxt] = [*paths[node], nxt]
                todo.append(nxt)
    raise AssertionError(f"no circle through {start}")  # a component always has one


def test_the_layer_table_is_itself_a_layering() -> None:
    for layer, lower in BELOW.items():
        assert all(name in BELOW for name in lower), layer
        assert not any(layer in _reachable(name) for name in lower), f"{layer} is below itself"
    assert set(MODULE_LAYERS.values()) <= set(BELOW)


def test_no_import_circles() -> None:
    graph = import_graph()
    for module, target in TO_BE_REMOVED:
        graph[module].discard(target)
    found = [" -> ".join(chain) for chain in cycles(graph)]
    assert not found, "import circles:\n  " + "\n  ".join(found)


def test_imports_only_point_down() -> None:
    wrong: list[str] = []
    for module, imported in sorted(import_graph().items()):
        allowed = _reachable(layer_of(module))
        for target in sorted(imported):
            if layer_of(target) not in allowed and (module, target) not in ALLOWED:
                wrong.append(f"{module} ({layer_of(module)}) -> {target} ({layer_of(target)})")
    assert not wrong, "imports against the layer order:\n  " + "\n  ".join(wrong)


def test_every_allowed_exception_is_still_used() -> None:
    graph = import_graph()
    stale = [pair for pair in ALLOWED if pair[1] not in graph.get(pair[0], set())]
    assert not stale, f"remove these from ALLOWED: {stale}"
