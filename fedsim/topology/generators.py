"""Communication graphs for decentralized learning, as networkx graphs on nodes ``0..n-1``.

Every builder checks its arguments first and raises :class:`fedsim.errors.FedsimError` naming
the bad value. Undirected families return ``nx.Graph``; the directed exponential graph returns
``nx.DiGraph`` where an edge ``i -> j`` means node i sends to node j. Random families take an
integer ``seed`` and derive their stream through :func:`fedsim.seeding.derive_seed`, so the same
``(seed, n)`` always gives the same graph and no global RNG is touched.
"""

from __future__ import annotations

import math

import networkx as nx

from fedsim.errors import FedsimError
from fedsim.seeding import derive_seed

__all__ = [
    "ring_graph",
    "torus_graph",
    "grid_graph",
    "complete_graph",
    "star_graph",
    "hypercube_graph",
    "random_regular_graph",
    "erdos_renyi_graph",
    "watts_strogatz_graph",
    "exponential_graph",
    "directed_exponential_graph",
    "exponential_offsets",
    "check_connected",
]


def _check_nodes(n: int, minimum: int, family: str) -> None:
    if not isinstance(n, int) or isinstance(n, bool) or n < minimum:
        raise FedsimError(f"{family}: nodes must be an integer >= {minimum}, got {n!r}")


def _side_lengths(n: int, rows: int | None, minimum: int, family: str) -> tuple[int, int]:
    """``(rows, cols)`` with ``rows * cols == n``; a square when ``rows`` is not given."""
    _check_nodes(n, minimum * minimum, family)
    if rows is None:
        rows = math.isqrt(n)
        if rows * rows != n:
            raise FedsimError(f"{family}: nodes={n} is not a perfect square; give rows= with rows dividing nodes")
    if rows < minimum or n % rows != 0 or n // rows < minimum:
        raise FedsimError(f"{family}: rows={rows} must divide nodes={n} with both sides >= {minimum}")
    return rows, n // rows


def check_connected(graph: nx.Graph, what: str) -> None:
    """Raise if ``graph`` is not connected (strongly connected when directed).

    Raises
    ------
    FedsimError
        Naming ``what`` and the number of components.
    """
    if graph.number_of_nodes() == 0:
        raise FedsimError(f"{what}: graph has no nodes")
    if graph.is_directed():
        parts = nx.number_strongly_connected_components(graph)
        kind = "strongly connected components"
    else:
        parts = nx.number_connected_components(graph)
        kind = "connected components"
    if parts != 1:
        raise FedsimError(f"{what}: graph is disconnected ({parts} {kind}); decentralized averaging needs a connected graph")


def ring_graph(n: int) -> nx.Graph:
    """Cycle ``0 - 1 - ... - (n-1) - 0``.

    With Metropolis-Hastings weights (1/3 everywhere) the spectral gap is
    $\\frac23(1-\\cos\\frac{2\\pi}{n})$.

    Examples
    --------
    >>> sorted(d for _, d in ring_graph(5).degree()) == [2] * 5
    True
    """
    _check_nodes(n, 3, "ring")
    return nx.cycle_graph(n)


def torus_graph(n: int, rows: int | None = None) -> nx.Graph:
    """2-D torus (periodic grid) of ``rows x (n / rows)`` nodes, each with 4 neighbours.

    Both sides must be at least 3 so that the four neighbours are distinct; node
    ``r * cols + c`` sits at row r, column c.
    """
    rows, cols = _side_lengths(n, rows, 3, "torus")
    return nx.convert_node_labels_to_integers(nx.grid_2d_graph(rows, cols, periodic=True), ordering="sorted")


def grid_graph(n: int, rows: int | None = None) -> nx.Graph:
    """Non-periodic 2-D grid of ``rows x (n / rows)`` nodes (degrees 2, 3 and 4)."""
    rows, _ = _side_lengths(n, rows, 2, "grid")
    return nx.convert_node_labels_to_integers(nx.grid_2d_graph(rows, n // rows), ordering="sorted")


def complete_graph(n: int) -> nx.Graph:
    """All pairs connected; Metropolis-Hastings weights give $W = \\mathbf{1}\\mathbf{1}^\\top/n$, gap 1."""
    _check_nodes(n, 2, "complete")
    return nx.complete_graph(n)


def star_graph(n: int) -> nx.Graph:
    """Hub 0 joined to leaves ``1..n-1``; Metropolis-Hastings weights give gap $1/n$."""
    _check_nodes(n, 3, "star")
    return nx.star_graph(n - 1)


def hypercube_graph(n: int) -> nx.Graph:
    """The $\\log_2 n$-dimensional hypercube; nodes i, j adjacent iff their bits differ in one place.

    Uniform weights $1/(1+\\log_2 n)$ give gap $2/(1+\\log_2 n)$.
    """
    _check_nodes(n, 2, "hypercube")
    if n & (n - 1):
        raise FedsimError(f"hypercube: nodes={n} must be a power of two")
    dim = n.bit_length() - 1
    return nx.Graph((i, i ^ (1 << b)) for i in range(n) for b in range(dim))


def random_regular_graph(n: int, degree: int = 4, seed: int = 0) -> nx.Graph:
    """Uniformly random ``degree``-regular graph (an expander with high probability), checked connected.

    References
    ----------
    .. [1] A. Steger and N. Wormald, "Generating random regular graphs quickly",
       Combinatorics, Probability and Computing 8(4), 1999.
    """
    _check_nodes(n, 3, "random_regular")
    if not 2 <= degree < n:
        raise FedsimError(f"random_regular: degree={degree} must satisfy 2 <= degree < nodes={n}")
    if (n * degree) % 2:
        raise FedsimError(f"random_regular: nodes * degree = {n} * {degree} must be even")
    graph = nx.random_regular_graph(degree, n, seed=derive_seed(seed, "topology.random_regular", n, degree))
    check_connected(graph, f"random_regular(nodes={n}, degree={degree}, seed={seed})")
    return graph


def erdos_renyi_graph(n: int, p: float | None = None, seed: int = 0) -> nx.Graph:
    """$G(n, p)$ random graph; ``p`` defaults to $\\min(1, 2\\ln n / n)$, twice the connectivity threshold.

    Raises
    ------
    FedsimError
        If the sampled graph is disconnected (the message suggests a larger ``p`` or another seed).
    """
    _check_nodes(n, 2, "erdos_renyi")
    if p is None:
        p = min(1.0, 2.0 * math.log(n) / n)
    if not 0.0 < p <= 1.0:
        raise FedsimError(f"erdos_renyi: p={p} must be in (0, 1]")
    graph = nx.gnp_random_graph(n, p, seed=derive_seed(seed, "topology.erdos_renyi", n))
    check_connected(graph, f"erdos_renyi(nodes={n}, p={p:.4g}, seed={seed}); raise p or change seed")
    return graph


def watts_strogatz_graph(n: int, k: int = 4, p: float = 0.1, seed: int = 0) -> nx.Graph:
    """Watts-Strogatz small world: a ring lattice with ``k`` nearest neighbours, each edge rewired with prob. ``p``.

    References
    ----------
    .. [1] D. J. Watts and S. H. Strogatz, "Collective dynamics of small-world networks",
       Nature 393, 1998.
    """
    _check_nodes(n, 3, "watts_strogatz")
    if k % 2 or not 2 <= k < n:
        raise FedsimError(f"watts_strogatz: k={k} must be even with 2 <= k < nodes={n}")
    if not 0.0 <= p <= 1.0:
        raise FedsimError(f"watts_strogatz: p={p} must be in [0, 1]")
    graph = nx.watts_strogatz_graph(n, k, p, seed=derive_seed(seed, "topology.watts_strogatz", n, k))
    check_connected(graph, f"watts_strogatz(nodes={n}, k={k}, p={p}, seed={seed}); lower p or change seed")
    return graph


def exponential_offsets(n: int) -> list[int]:
    """Offsets $2^0, 2^1, \\dots, 2^{\\tau-1}$ with $\\tau = \\lceil\\log_2 n\\rceil$ (all distinct and < n)."""
    return [1 << k for k in range(max(1, (n - 1).bit_length()))]


def exponential_graph(n: int) -> nx.Graph:
    """Undirected exponential graph: i and $i \\pm 2^k \\bmod n$ adjacent for $k < \\lceil\\log_2 n\\rceil$.

    References
    ----------
    .. [1] B. Ying, K. Yuan, Y. Chen, H. Hu, P. Pan and W. Yin, "Exponential Graph is Provably
       Efficient for Decentralized Deep Training", NeurIPS 2021.
    """
    _check_nodes(n, 2, "exponential")
    return nx.Graph(((i, (i + s) % n) for i in range(n) for s in exponential_offsets(n)))


def directed_exponential_graph(n: int) -> nx.DiGraph:
    """Directed exponential graph: node i sends to $i + 2^k \\bmod n$ for $k < \\lceil\\log_2 n\\rceil$.

    Every node has in- and out-degree $\\tau$, so weights $1/(\\tau+1)$ are doubly stochastic
    (but not symmetric). The spectral gap $1 - |\\lambda_2| = 2/(\\tau+1)$ of Ying et al. 2021 holds
    when n is a power of two; for other n it is neither that nor a bound either way (n = 12:
    0.4 = 2/(\\tau+1); n = 37: 0.418 against 2/7 = 0.286), so compute it (``spectral_gap``).
    """
    _check_nodes(n, 2, "directed_exponential")
    graph = nx.DiGraph()
    graph.add_nodes_from(range(n))
    graph.add_edges_from((i, (i + s) % n) for i in range(n) for s in exponential_offsets(n))
    return graph
