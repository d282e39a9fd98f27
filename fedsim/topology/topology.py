"""The :class:`Topology` an algorithm gossips over: one period of graphs and their mixing matrices.

Built from a spec by :func:`fedsim.topology.specs.build_topology`; the decentralized rules only
read it (``matrix(t)``), so this module needs no pydantic and no spec.
"""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx
import scipy.sparse as sp

from fedsim.topology.spectral import period_product, second_eigenvalue_modulus

__all__ = ["Topology"]


@dataclass(frozen=True)
class Topology:
    """The graphs and mixing matrices of one period; round t uses index ``t % period``."""

    family: str
    mixing: str
    graphs: tuple[nx.Graph, ...]
    matrices: tuple[sp.csr_array, ...]

    @property
    def nodes(self) -> int:
        return self.graphs[0].number_of_nodes()

    @property
    def period(self) -> int:
        return len(self.matrices)

    @property
    def directed(self) -> bool:
        return self.graphs[0].is_directed()

    def matrix(self, t: int) -> sp.csr_array:
        """Mixing matrix of round ``t``."""
        return self.matrices[t % self.period]

    def lambda2(self) -> float:
        """$|\\lambda_2|$ of W, or of the product over one period when time-varying."""
        return second_eigenvalue_modulus(period_product(self.matrices))

    def spectral_gap(self) -> float:
        """$1 - |\\lambda_2|$ of W, or of the product over one period when time-varying."""
        return min(1.0, max(0.0, 1.0 - self.lambda2()))

    def round_gaps(self) -> list[float]:
        """Spectral gap of each round's W."""
        return [min(1.0, max(0.0, 1.0 - second_eigenvalue_modulus(w))) for w in self.matrices]

    def degree_range(self) -> tuple[int, int]:
        """Smallest and largest (out-)degree over the graphs of a period."""
        degrees = [d for g in self.graphs for _, d in (g.out_degree() if g.is_directed() else g.degree())]
        return min(degrees), max(degrees)

    def edges(self) -> int:
        """Edges of the union of the period's graphs."""
        return nx.compose_all(self.graphs).number_of_edges()
