"""Validation of mixing matrices against the conditions decentralized SGD assumes (e.g. Koloskova,
Loizou, Boreiri, Jaggi and Stich, "A Unified Theory of Decentralized SGD with Changing Topology and
Local Updates", ICML 2020, Assumption 4)."""

from __future__ import annotations

from collections.abc import Sequence

import networkx as nx
import numpy as np
import scipy.sparse as sp

from fedsim.errors import FedsimError
from fedsim.topology.generators import check_connected

__all__ = ["validate_mixing", "validate_schedule"]

TOL = 1e-12


def _support_outside(matrix: sp.csr_array, graph: nx.Graph) -> tuple[int, int] | None:
    """First nonzero ``(i, j)``, ``i != j``, without an edge ``j -> i`` (either direction if undirected)."""
    coo = matrix.tocoo()
    for i, j, value in zip(coo.row.tolist(), coo.col.tolist(), coo.data.tolist()):
        if i != j and value != 0.0 and not graph.has_edge(j, i):
            return i, j
    return None


def validate_mixing(matrix: sp.csr_array, graph: nx.Graph, *, check_connectivity: bool = True, tol: float = TOL) -> None:
    """Check that ``matrix`` is a valid mixing matrix for ``graph``.

    Conditions: square of the graph's size, nonnegative, positive diagonal,
    symmetric when the graph is undirected, every row and column sums to 1 within ``tol``,
    support inside edges plus diagonal, and the graph connected (strongly, if directed).

    Raises
    ------
    FedsimError
        One line naming the first violated condition and where.
    """
    n = graph.number_of_nodes()
    if matrix.shape != (n, n):
        raise FedsimError(f"mixing matrix has shape {matrix.shape}, graph has {n} nodes")
    if matrix.nnz and matrix.data.min() < 0:
        raise FedsimError(f"mixing matrix has a negative entry ({matrix.data.min():.3g})")
    diag = matrix.diagonal()
    if diag.min() <= 0:
        raise FedsimError(f"mixing matrix has a non-positive self-weight at node {int(diag.argmin())}")
    if not graph.is_directed():
        asym = abs(matrix - matrix.T).max() if matrix.nnz else 0.0
        if asym > tol:
            raise FedsimError(f"mixing matrix is not symmetric (max |W - W^T| = {asym:.3g}) on an undirected graph")
    for axis, name in ((1, "row"), (0, "column")):
        sums = np.asarray(matrix.sum(axis=axis)).ravel()
        worst = int(np.abs(sums - 1.0).argmax())
        if abs(sums[worst] - 1.0) > tol:
            raise FedsimError(f"mixing matrix {name} {worst} sums to {sums[worst]!r}, not 1 (tolerance {tol})")
    outside = _support_outside(matrix, graph)
    if outside is not None:
        raise FedsimError(f"mixing matrix entry ({outside[0]}, {outside[1]}) is nonzero but the graph has no edge {outside[1]} -> {outside[0]}")
    if check_connectivity:
        check_connected(graph, "mixing matrix")


def validate_schedule(matrices: Sequence[sp.csr_array], graphs: Sequence[nx.Graph]) -> None:
    """Validate a time-varying schedule: each W on its own graph, connectivity on the union of a period.

    Individual rounds of a time-varying graph may be disconnected (one-peer graphs are); what
    averaging needs is that information reaches everyone within a period.
    """
    if len(graphs) == 1:
        validate_mixing(matrices[0], graphs[0])
        return
    for t, (matrix, graph) in enumerate(zip(matrices, graphs, strict=True)):
        try:
            validate_mixing(matrix, graph, check_connectivity=False)
        except FedsimError as err:
            raise FedsimError(f"round {t} of the period: {err}") from None
    check_connected(nx.compose_all(graphs), f"union of the {len(graphs)} graphs of one period")
