"""Mixing matrices W for gossip averaging, as ``scipy.sparse.csr_array`` (float64, n x n).

Convention: node i's new value is $\\sum_j W_{ij} x_j$, i.e. ``X <- W @ X`` for the (n, d)
tensor of all nodes' parameters, so $W_{ij} > 0$ needs an edge $j \\to i$ (or $i = j$). For the
symmetric matrices of undirected graphs this is the averaging iteration $X^{t+1} = X^t W$ with
nodes as columns of Xiao and Boyd, "Fast Linear Iterations for Distributed Averaging" (2004).
Column sums of 1 preserve the node average; row sums of 1 make the consensus vector a fixed point.
"""

from __future__ import annotations

from collections.abc import Callable

import networkx as nx
import numpy as np
import scipy.sparse as sp

from fedsim.errors import FedsimError

__all__ = [
    "metropolis_hastings",
    "max_degree",
    "uniform",
    "lazy",
    "parametric",
    "column_stochastic",
    "mixing_matrix",
    "mixing_kinds",
    "default_mixing",
]


def _undirected_only(graph: nx.Graph, kind: str) -> None:
    if graph.is_directed():
        raise FedsimError(f"mixing {kind!r} needs an undirected graph; directed graphs use 'column_stochastic'")


def _symmetric_with_diagonal(graph: nx.Graph, weight: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> sp.csr_array:
    """Symmetric W with off-diagonal ``weight(d_u, d_v)`` per edge and $W_{ii} = 1 - \\sum_{j \\ne i} W_{ij}$."""
    n = graph.number_of_nodes()
    deg = np.array([graph.degree(i) for i in range(n)], dtype=np.float64)
    edges = np.array(list(graph.edges()), dtype=np.int64).reshape(-1, 2)
    u, v = edges[:, 0], edges[:, 1]
    w = weight(deg[u], deg[v])
    off = sp.coo_array((np.concatenate([w, w]), (np.concatenate([u, v]), np.concatenate([v, u]))), shape=(n, n)).tocsr()
    return (off + sp.diags_array(1.0 - np.asarray(off.sum(axis=1)).ravel())).tocsr()


def metropolis_hastings(graph: nx.Graph) -> sp.csr_array:
    """Metropolis-Hastings weights $W_{ij} = 1/(1 + \\max(d_i, d_j))$ for each edge, $W_{ii} = 1 - \\sum_{j \\ne i} W_{ij}$.

    These are the Metropolis weights of Xiao and Boyd (2004), $1/\\max\\{\\deg(i), \\deg(j)\\}$ with
    the degree counting the self-loop. Symmetric, doubly stochastic, nonnegative, positive diagonal.

    Examples
    --------
    >>> W = metropolis_hastings(nx.cycle_graph(6))
    >>> bool(np.allclose(W.sum(axis=1), 1) and np.allclose(W.toarray(), W.toarray().T))
    True
    """
    _undirected_only(graph, "metropolis_hastings")
    return _symmetric_with_diagonal(graph, lambda du, dv: 1.0 / (1.0 + np.maximum(du, dv)))


def max_degree(graph: nx.Graph) -> sp.csr_array:
    """Max-degree weights $W_{ij} = 1/(1 + \\Delta)$ for each edge, $\\Delta$ the largest degree."""
    _undirected_only(graph, "max_degree")
    top = max((d for _, d in graph.degree()), default=0)
    return _symmetric_with_diagonal(graph, lambda du, dv: np.full_like(du, 1.0 / (1.0 + top)))


def uniform(graph: nx.Graph) -> sp.csr_array:
    """Uniform weights $1/(d + 1)$ on self and each neighbour of a d-regular graph.

    Raises
    ------
    FedsimError
        If the graph is not regular (uniform neighbour averaging is then not doubly stochastic).
    """
    _undirected_only(graph, "uniform")
    degrees = {d for _, d in graph.degree()}
    if len(degrees) != 1:
        raise FedsimError(f"mixing 'uniform' needs a regular graph, got degrees {min(degrees)}..{max(degrees)}; use 'metropolis_hastings'")
    return _symmetric_with_diagonal(graph, lambda du, dv: 1.0 / (1.0 + du))


def lazy(matrix: sp.csr_array) -> sp.csr_array:
    """Lazy version $(I + W)/2$: same stationary average, all eigenvalues moved into $[0, 1]$."""
    return ((sp.eye_array(matrix.shape[0]) + matrix) * 0.5).tocsr()


def parametric(n: int, gap: float) -> sp.csr_array:
    """$W = \\rho\\,\\mathbf{1}\\mathbf{1}^\\top/n + (1-\\rho) I$, whose spectral gap is exactly $\\rho$.

    Supported on the complete graph; it lets experiments dial the gap directly.
    """
    if not 0.0 < gap <= 1.0:
        raise FedsimError(f"mixing 'parametric': gap={gap} must be in (0, 1]")
    return sp.csr_array(np.full((n, n), gap / n) + (1.0 - gap) * np.eye(n))


def column_stochastic(graph: nx.DiGraph) -> sp.csr_array:
    """Each node keeps and sends equal shares: $W_{ji} = 1/(1 + d^{out}_i)$ for $i \\to j$ and $j = i$.

    Columns sum to 1 (mass is conserved, as in push-sum); on graphs with equal in- and
    out-degrees everywhere (the exponential graphs) rows sum to 1 as well.
    """
    if not graph.is_directed():
        raise FedsimError("mixing 'column_stochastic' needs a directed graph; undirected graphs use 'metropolis_hastings'")
    n = graph.number_of_nodes()
    share = 1.0 / (1.0 + np.array([graph.out_degree(i) for i in range(n)], dtype=np.float64))
    edges = np.array(list(graph.edges()), dtype=np.int64).reshape(-1, 2)
    src, dst = edges[:, 0], edges[:, 1]
    rows = np.concatenate([dst, np.arange(n)])
    cols = np.concatenate([src, np.arange(n)])
    return sp.coo_array((share[cols], (rows, cols)), shape=(n, n)).tocsr()


_GRAPH_KINDS: dict[str, Callable[[nx.Graph], sp.csr_array]] = {
    "metropolis_hastings": metropolis_hastings,
    "max_degree": max_degree,
    "uniform": uniform,
    "column_stochastic": column_stochastic,
}


def mixing_kinds() -> list[str]:
    """Names accepted by :func:`mixing_matrix`."""
    return [*_GRAPH_KINDS, "lazy", "parametric"]


def default_mixing(graph: nx.Graph) -> str:
    """``column_stochastic`` for directed graphs, ``metropolis_hastings`` otherwise."""
    return "column_stochastic" if graph.is_directed() else "metropolis_hastings"


def mixing_matrix(graph: nx.Graph, kind: str, gap: float | None = None) -> sp.csr_array:
    """The mixing matrix of ``kind`` on ``graph``.

    ``lazy`` is the lazy version of the graph's default matrix; ``parametric`` needs ``gap``
    and the complete graph (its support is every pair).
    """
    if kind not in mixing_kinds():
        raise FedsimError(f"mixing {kind!r} unknown; choose one of {', '.join(mixing_kinds())}")
    if (gap is not None) != (kind == "parametric"):
        raise FedsimError(f"mixing {kind!r}: gap is given exactly when kind is 'parametric'")
    if kind == "lazy":
        return lazy(_GRAPH_KINDS[default_mixing(graph)](graph))
    if kind == "parametric":
        n = graph.number_of_nodes()
        if graph.is_directed() or graph.number_of_edges() != n * (n - 1) // 2:
            raise FedsimError("mixing 'parametric' is supported on every pair of nodes; use family 'complete'")
        assert gap is not None  # checked above: parametric comes with a gap
        return parametric(n, gap)
    return _GRAPH_KINDS[kind](graph)
