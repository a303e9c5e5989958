"""Pure graph functions over `needs`: batches, cycles, dependents, the critical path."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from dr.runbook.model import Runbook, Step

Graph = Mapping[str, Sequence[str]]  # step id -> the ids it needs, in file order


def find_cycles(graph: Graph) -> list[list[str]]:
    """Each cycle once, as a path that returns to its start: ['a', 'b', 'a']."""
    color = {node: 0 for node in graph}  # 0 new, 1 on the stack, 2 done
    stack: list[str] = []
    cycles: list[list[str]] = []
    seen: set[frozenset[str]] = set()

    def visit(node: str) -> None:
        color[node] = 1
        stack.append(node)
        for dep in graph.get(node, ()):
            if dep not in color:
                continue  # an unknown id: reported elsewhere
            if color[dep] == 1:
                cycle = stack[stack.index(dep):] + [dep]
                key = frozenset(cycle)
                if key not in seen:
                    seen.add(key)
                    cycles.append(cycle)  # in `needs` order: a -> b means a needs b
            elif color[dep] == 0:
                visit(dep)
        stack.pop()
        color[node] = 2

    for node in graph:
        if color[node] == 0:
            visit(node)
    return cycles


def batches(graph: Graph) -> list[list[str]]:
    """Topological layers: each id comes after everything it needs; file order within a layer."""
    order = {node: i for i, node in enumerate(graph)}
    level: dict[str, int] = {}

    def depth(node: str, trail: frozenset[str] = frozenset()) -> int:
        if node not in level:
            if node in trail:
                raise ValueError(f"cycle through {node!r}")
            deps = [d for d in graph[node] if d in graph]
            level[node] = 1 + max((depth(d, trail | {node}) for d in deps), default=-1)
        return level[node]

    layers: dict[int, list[str]] = {}
    for node in graph:
        layers.setdefault(depth(node), []).append(node)
    return [sorted(layers[i], key=order.__getitem__) for i in sorted(layers)]


def plan_batches(runbook: Runbook) -> list[list[Step]]:
    """The runbook's DAG steps in topological batches (what `dr runbook plan` shows). The engine
    starts a step as soon as its needs are done, so a batch is a bound, not a barrier."""
    by_id = {s.id: s for s in runbook.steps}
    return [[by_id[i] for i in layer] for layer in batches(needs_graph(runbook.steps))]


def needs_graph(steps: Sequence[Step]) -> dict[str, tuple[str, ...]]:
    return {s.id: s.needs for s in steps}


def dependents(graph: Graph, node: str) -> list[str]:
    """Every id that needs `node`, directly or not, in graph order."""
    found: set[str] = set()
    frontier = [node]
    while frontier:
        current = frontier.pop()
        for other, deps in graph.items():
            if current in deps and other not in found:
                found.add(other)
                frontier.append(other)
    return [n for n in graph if n in found]


def critical_path(graph: Graph, seconds: Mapping[str, float]) -> tuple[float, list[str]]:
    """The longest chain of `needs` weighted by step durations (steps without one weigh 0):
    the shortest wall time any scheduler could achieve with unlimited parallelism. Of chains
    as long, the one with more steps (a step that took no time still ends the chain)."""
    finish: dict[str, tuple[float, list[str]]] = {}
    longest = lambda f: (f[0], len(f[1]))  # noqa: E731
    for layer in batches(graph):
        for node in layer:
            before = max((finish[d] for d in graph[node] if d in finish), key=longest, default=(0.0, []))
            finish[node] = (before[0] + float(seconds.get(node) or 0.0), before[1] + [node])
    return max(finish.values(), key=longest, default=(0.0, []))
