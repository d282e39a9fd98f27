"""Time-varying graphs: one graph per round, repeating with a fixed period."""

from __future__ import annotations

import networkx as nx

from fedsim.topology.generators import _check_nodes, exponential_offsets

__all__ = ["one_peer_exponential_graphs"]


def one_peer_exponential_graphs(n: int) -> list[nx.DiGraph]:
    """One-peer exponential graphs: in round t node i sends only to $i + 2^{t \\bmod \\tau} \\bmod n$.

    The period is $\\tau = \\lceil\\log_2 n\\rceil$. With weights 1/2 on self and the one peer,
    each round's W is doubly stochastic, and when n is a power of two the product of the
    $\\tau$ matrices of a period is exactly $\\mathbf{1}\\mathbf{1}^\\top/n$ (exact consensus
    after one period although every node talks to a single peer per round).

    References
    ----------
    .. [1] B. Ying, K. Yuan, Y. Chen, H. Hu, P. Pan and W. Yin, "Exponential Graph is Provably
       Efficient for Decentralized Deep Training", NeurIPS 2021, Section 4.
    """
    _check_nodes(n, 2, "one_peer_exponential")
    graphs = []
    for shift in exponential_offsets(n):
        graph = nx.DiGraph()
        graph.add_nodes_from(range(n))
        graph.add_edges_from((i, (i + shift) % n) for i in range(n))
        graphs.append(graph)
    return graphs
