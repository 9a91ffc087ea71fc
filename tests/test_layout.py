"""The house rules of feedsync's layout, read off the imports (``ast``, lazy imports too).

Data flows one way: fetch -> parsers -> store -> match -> render -> publish -> serve ->
zotero, all of them on top of config, which validates topic queries with the query
language (a pure library: it imports no stage). A stage imports only itself, the stages
upstream of it, and the shared modules; the edges (cli, pipeline, daemon) may import
anything. No module imports another module's ``_private`` names, and there are no import
cycles.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "feedsync"

STAGES = ["query", "config", "fetch", "parsers", "store", "match", "render", "publish"]
STAGES += ["serve", "zotero"]
SHARED = {"feedsync", "feedsync.models", "feedsync.errors", "feedsync.text", "feedsync.net"}
EDGES = {"feedsync.cli", "feedsync.pipeline", "feedsync.daemon", "feedsync.__main__"}


@dataclass(frozen=True)
class Import:
    module: str  # the importing module
    target: str  # the module imported (a name imported from a package may be a module)
    names: tuple[str, ...]
    line: int


def module_name(path: Path) -> str:
    parts = ["feedsync", *path.relative_to(ROOT).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in ROOT.rglob("*.py")}


def imports(module: str) -> Iterator[Import]:
    """Every import of feedsync's own modules, wherever it stands (lazy ones included)."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "feedsync":
                    yield Import(module, alias.name, (), node.lineno)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join([*package.split(".")[: len(package.split(".")) - node.level + 1]])
                base = f"{base}.{node.module}" if node.module else base
            if base.split(".")[0] != "feedsync":
                continue
            names = tuple(alias.name for alias in node.names)
            yield Import(module, base, names, node.lineno)
            for name in names:  # `from feedsync.config import cron` imports a module
                if f"{base}.{name}" in MODULES:
                    yield Import(module, f"{base}.{name}", (), node.lineno)


ALL_IMPORTS = [i for module in sorted(MODULES) for i in imports(module)]


def stage_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in STAGES else None


def test_every_module_has_a_place() -> None:
    homeless = [m for m in MODULES if m not in SHARED | EDGES and stage_of(m) is None]
    assert homeless == [], "modules outside the stages, the shared modules and the edges"


def downstream(found: list[Import]) -> list[str]:
    wrong = []
    for i in found:
        source, target = stage_of(i.module), stage_of(i.target)
        if i.module in EDGES or i.target in SHARED or source == target:
            continue
        if i.module in SHARED:
            wrong.append(f"{i.module}:{i.line}: a shared module imports {i.target}")
        elif i.target in EDGES:
            wrong.append(f"{i.module}:{i.line}: imports the edge {i.target}")
        elif source and target and STAGES.index(target) > STAGES.index(source):
            wrong.append(f"{i.module}:{i.line}: {source} imports {i.target}, downstream of it")
    return wrong


def private(found: list[Import]) -> list[str]:
    return [
        f"{i.module}:{i.line}: {name} from {i.target}"
        for i in found
        for name in i.names
        if name.startswith("_") and not name.startswith("__") and i.target != i.module
    ]


def cycles(found: list[Import]) -> list[str]:
    graph: dict[str, set[str]] = {}
    for i in found:
        # A module importing its own package's front (``from feedsync.store import X``
        # inside feedsync.store.core) is no cycle to count: the package runs first anyway.
        if i.target != i.module and not i.module.startswith(i.target + "."):
            graph.setdefault(i.module, set()).add(i.target)
    out = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(module: str) -> None:
        state[module] = 1
        path.append(module)
        for target in sorted(graph.get(module, ())):
            if state.get(target) == 1:
                out.append(" -> ".join([*path[path.index(target) :], target]))
            elif target not in state:
                visit(target)
        path.pop()
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module)
    return out


def test_no_stage_imports_a_stage_downstream_of_it() -> None:
    assert downstream(ALL_IMPORTS) == []


def test_no_module_imports_another_modules_private_names() -> None:
    assert private(ALL_IMPORTS) == []


def test_there_are_no_import_cycles() -> None:
    assert cycles(ALL_IMPORTS) == []


def test_the_rules_catch_what_they_are_for() -> None:
    """Each rule finds a made-up import that breaks it: a rule that cannot fail checks
    nothing."""
    up = Import("feedsync.store.core", "feedsync.zotero.sync", ("sync",), 1)
    assert downstream([up]) == [
        "feedsync.store.core:1: store imports feedsync.zotero.sync, downstream of it"
    ]
    assert downstream([Import("feedsync.text", "feedsync.store", ("Store",), 2)])
    assert downstream([Import("feedsync.pipeline", "feedsync.zotero.sync", ("sync",), 3)]) == []
    assert private([Import("feedsync.query.tree", "feedsync.query.index", ("_COMPARE",), 4)])
    assert private([Import("feedsync.cli", "feedsync", ("__version__",), 5)]) == []
    loop = [
        Import("feedsync.query.parse", "feedsync.query.tree", ("Node",), 6),
        Import("feedsync.query.tree", "feedsync.query.parse", ("Parser",), 7),
    ]
    assert cycles(loop) == ["feedsync.query.parse -> feedsync.query.tree -> feedsync.query.parse"]
    own_front = [
        Import("feedsync.store", "feedsync.store.core", ("Store",), 8),
        Import("feedsync.store.core", "feedsync.store", ("FetchState",), 9),
    ]
    assert cycles(own_front) == []
