"""Graphs read from edge-list files: one ``u v`` pair of integer node ids per line."""

from __future__ import annotations

from pathlib import Path

import networkx as nx

from fedsim.errors import FedsimError

__all__ = ["read_edge_list"]


def read_edge_list(path: str | Path, n: int | None = None) -> nx.Graph:
    """Read an undirected graph on nodes ``0..n-1`` from a whitespace-separated edge list.

    Blank lines and text after ``#`` are ignored. With ``n`` given, node ids must lie in
    ``[0, n)`` and nodes that appear in no edge are still part of the graph (so a missing
    node makes the graph disconnected rather than silently smaller); without it, ``n`` is
    one more than the largest id.

    Raises
    ------
    FedsimError
        Naming the file and line of a malformed pair, a negative or out-of-range id, or a
        self-loop, or naming the file when it is missing or has no edges.
    """
    path = Path(path)
    if not path.is_file():
        raise FedsimError(f"edge list {path}: file not found")
    edges: list[tuple[int, int]] = []
    for lineno, raw in enumerate(path.read_text().splitlines(), start=1):
        fields = raw.split("#", 1)[0].split()
        if not fields:
            continue
        if len(fields) != 2 or not all(f.isdigit() for f in fields):
            raise FedsimError(f"edge list {path}:{lineno}: expected two non-negative integer node ids, got {raw.strip()!r}")
        u, v = int(fields[0]), int(fields[1])
        if u == v:
            raise FedsimError(f"edge list {path}:{lineno}: self-loop {u} {v}; self-weights come from the mixing matrix")
        if n is not None and max(u, v) >= n:
            raise FedsimError(f"edge list {path}:{lineno}: node id {max(u, v)} out of range for nodes={n} (ids are 0..{n - 1})")
        edges.append((u, v))
    if not edges:
        raise FedsimError(f"edge list {path}: no edges")
    graph = nx.Graph()
    graph.add_nodes_from(range(n if n is not None else 1 + max(max(e) for e in edges)))
    graph.add_edges_from(edges)
    return graph
