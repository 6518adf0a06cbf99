"""The import graph of the packages: no circles, and the pure parts import no Kafka client."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("processors", "dashboard", "deploy")
# Being removed on another branch (the processors' run scaffold); drop once merged.


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def import_graph() -> dict[str, set[str]]:
    """Module → the modules of our packages it imports anywhere in its body (function-level
    imports included: they close a circle as surely, only later)."""
    modules = _modules()

    def ours(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets: set[str | None] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets.update(ours(alias.name) for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                targets.update(
                    ours(f"{node.module}.{alias.name}") or ours(node.module) for alias in node.names
                )
        graph[name] = {t for t in targets if t and t != name}
    return graph


def circles(graph: dict[str, set[str]]) -> Iterator[frozenset[str]]:
    """Strongly connected components with more than one module (Tarjan, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    yield frozenset(component)


def test_the_circle_finder_finds_a_circle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert list(circles(graph)) == [frozenset({"a", "b", "c"})]


def test_no_import_circles() -> None:
    assert list(circles(import_graph())) == []


# The parts the packages are made of. The CLI is the composition root: it may import every
# other part (the processors, the dashboard's launcher, the local broker manager), and no part
# may import it back; the local broker manager and the dashboard use the processors' library.
PARTS = ("processors.cli", "deploy.localkafka", "processors", "dashboard", "deploy")


def part_of(module: str) -> str:
    if module == "processors.__main__":  # `python -m processors`: the CLI's other door
        return "processors.cli"
    return next(p for p in PARTS if module == p or module.startswith(p + "."))


def test_no_circles_between_the_parts() -> None:
    graph: dict[str, set[str]] = {part: set() for part in PARTS}
    for module, targets in import_graph().items():
        source = part_of(module)
        for target in {part_of(t) for t in targets} - {source}:
            graph[source].add(target)
    assert list(circles(graph)) == []


PURE = (
    "processors.core.headers",
    "processors.core.envelope",
    "processors.core.display",
    "processors.core.routing",
    "processors.dlq.model",
    "processors.dlq.filters",
    "processors.dlq.rewrite",
    "dashboard.shape",
)
KAFKA_CLIENTS = ("confluent_kafka", "quixstreams")


def test_the_pure_parts_import_no_kafka_client() -> None:
    """Neither they nor anything they import (package ``__init__`` files aside) needs a
    Kafka client."""
    modules = _modules()
    graph = import_graph()
    for pure in PURE:
        seen, todo = set(), [pure]
        while todo:
            name = todo.pop()
            if name in seen:
                continue
            seen.add(name)
            todo.extend(graph[name])
            tree = ast.parse(modules[name].read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                names = (
                    [alias.name for alias in node.names]
                    if isinstance(node, ast.Import)
                    else [node.module or ""]
                    if isinstance(node, ast.ImportFrom)
                    else []
                )
                assert not any(n.split(".")[0] in KAFKA_CLIENTS for n in names), (pure, name)
