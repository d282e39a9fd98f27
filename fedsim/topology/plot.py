"""Drawing a topology: nodes coloured by degree (matplotlib imported lazily)."""

from __future__ import annotations

from pathlib import Path

import networkx as nx

from fedsim.errors import FedsimError

__all__ = ["plot_graph"]


def plot_graph(graph: nx.Graph, path: str | Path, title: str = "") -> Path:
    """Save a drawing of ``graph`` to ``path`` (PNG), nodes coloured by (out-)degree.

    Uses a circular layout, which shows rings, exponential and small-world graphs as their
    definitions describe them, up to a few hundred nodes; equal axis scales keep the circle
    round. A regular graph (one degree) gets one colour and no colour bar, which would only
    show a single value.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.backend_bases import FigureCanvasBase

    path = Path(path)
    formats = sorted(FigureCanvasBase.get_supported_filetypes())
    if path.suffix.lower().lstrip(".") not in formats:  # checked before drawing anything
        raise FedsimError(f"--plot {path}: unknown image type {path.suffix or '(no extension)'} (allowed: {', '.join('.' + f for f in formats)})")
    existing = next((p for p in path.parents if p.exists()), None)
    if existing is not None and not existing.is_dir():
        raise FedsimError(f"--plot {path}: {existing} is a file, so nothing can be created below it")
    degrees = dict(graph.out_degree() if graph.is_directed() else graph.degree())
    fig, ax = plt.subplots(figsize=(6, 6))
    pos = nx.circular_layout(sorted(graph.nodes()))
    regular = len(set(degrees.values())) <= 1
    size = max(10, 3000 // max(1, len(graph)))
    if regular:
        nx.draw_networkx_nodes(graph, pos, ax=ax, node_size=size, node_color="tab:blue")
    else:
        nodes = nx.draw_networkx_nodes(graph, pos, ax=ax, node_size=size, node_color=[degrees[v] for v in graph.nodes()], cmap="viridis")
        fig.colorbar(nodes, ax=ax, label="degree", shrink=0.7)
    nx.draw_networkx_edges(graph, pos, ax=ax, alpha=0.3, arrows=graph.is_directed(), width=0.6)
    degree_note = f" (every node has degree {next(iter(degrees.values()))})" if regular and degrees else ""
    ax.set_title(title + degree_note)
    ax.set_aspect("equal")
    ax.set_axis_off()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=120, bbox_inches="tight")
    except OSError as exc:
        raise FedsimError(f"--plot {path}: cannot write it ({exc.strerror or exc})") from None
    finally:
        plt.close(fig)
    return path
