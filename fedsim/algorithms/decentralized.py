"""Shared stages of the serverless rules (gossip, D-PSGD, CHOCO-SGD): the node matrix and its metrics.

There is no server: :class:`~fedsim.algorithms.base.ServerState` ``params`` holds the (n, d)
matrix X whose row i is node i's parameters, and a gossip step is one product with the
round's mixing matrix (:func:`fedsim.topology.gossip.gossip`). Local training of all n nodes
goes through the runtime with one start point per node.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from fedsim.algorithms.base import Algorithm, RoundMetrics, ServerState
from fedsim.client.task import FLOAT_BITS, ClientTask
from fedsim.runtimes.base import CohortResult, Runtime
from fedsim.robustness.byzantine import ByzantineClients
from fedsim.topology.gossip import consensus_distance, gossip, to_torch
from fedsim.topology.topology import Topology

__all__ = ["Decentralized"]


class Decentralized(Algorithm):
    """Base of the decentralized rules: n nodes on a (possibly time-varying) topology.

    Parameters
    ----------
    topology : Topology
        Graphs and mixing matrices; round t uses ``topology.matrix(t)``.
    task : ClientTask or None
        Each node's local work between gossip steps (local SGD with tau steps); None for
        pure averaging.
    seed : int (default: 0)
        Root seed for the rule's own streams (compression randomness).
    """

    def __init__(self, *, topology: Topology, task: ClientTask | None, seed: int = 0,
                 mixing_rule: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None) -> None:
        self.topology = topology
        self.task = task
        self.seed = seed
        self.mixing_rule = mixing_rule
        #: Byzantine nodes (set by the robustness section); their updates are replaced by the attack.
        self.byzantine: ByzantineClients | None = None
        self._mixing: dict[tuple[int, str, torch.dtype], torch.Tensor] = {}
        self._degrees: dict[int, torch.Tensor] = {}

    @property
    def nodes(self) -> int:
        return self.topology.nodes

    def init(self, params: torch.Tensor) -> ServerState:
        """Every node starts from the same initial parameters."""
        return ServerState(params.detach().clone().expand(self.nodes, -1).contiguous())

    def eval_params(self, state: ServerState) -> torch.Tensor:
        """The averaged model $\\bar x = \\frac1n \\sum_i x_i$ (known to no node, reported as in the theory),
        over the honest nodes only when some are Byzantine."""
        return state.params[self.honest(state.params.device)].mean(dim=0)

    def honest(self, device: torch.device | str = "cpu") -> torch.Tensor:
        """(n,) bool mask of the honest nodes."""
        if self.byzantine is None:
            return torch.ones(self.nodes, dtype=torch.bool, device=device)
        return ~self.byzantine.mask(range(self.nodes)).to(device)

    def mix(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """The mixing stage: plain gossip ``W X``, or the configured robust rule (ClippedGossip, trimmed mean)."""
        return gossip(x, w) if self.mixing_rule is None else self.mixing_rule(x, w)

    def corrupt(self, updates: torch.Tensor, rnd: int) -> torch.Tensor:
        """The node updates as sent: Byzantine rows replaced by their attack."""
        return updates if self.byzantine is None else self.byzantine.corrupt(updates, list(range(self.nodes)), rnd)

    def mixing(self, rnd: int, device: torch.device, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """Round ``rnd``'s W as a torch matrix on ``device`` in the parameters' ``dtype`` (cached per position in the period)."""
        key = (rnd % self.topology.period, str(device), dtype)
        if key not in self._mixing:
            self._mixing[key] = to_torch(self.topology.matrix(rnd), device=device, dtype=dtype)
        return self._mixing[key]

    def local_updates(self, state: ServerState, rnd: int, runtime: Runtime) -> CohortResult:
        """Each node's local-SGD update ``local(x_i) - x_i`` from its own row of X."""
        assert self.task is not None, "a rule without client work has no local updates"
        return runtime.run_cohort(self.task, state.params, list(range(self.nodes)), rnd)

    def out_degrees(self, rnd: int) -> torch.Tensor:
        """How many neighbours each node sends to in round ``rnd`` (cached per position in the period)."""
        key = rnd % self.topology.period
        if key not in self._degrees:
            graph = self.topology.graphs[key]
            degree = graph.out_degree if graph.is_directed() else graph.degree
            self._degrees[key] = torch.tensor([degree(i) for i in range(self.nodes)], dtype=torch.int64)
        return self._degrees[key]

    def round_metrics(self, state: ServerState, rnd: int, bits_per_message: torch.Tensor | int,
                      train_loss: torch.Tensor | None) -> RoundMetrics:
        """Consensus distance and bytes: node i sends its message once to each out-neighbour."""
        if isinstance(bits_per_message, int):
            bits_per_message = torch.full((self.nodes,), bits_per_message, dtype=torch.int64)
        sent = int((self.out_degrees(rnd) * bits_per_message.cpu()).sum()) // 8
        return RoundMetrics(
            clients=self.nodes,
            train_loss=float(train_loss.double().mean()) if train_loss is not None else float("nan"),
            bytes_up=sent,
            bytes_down=0,
            # With Byzantine nodes, the honest nodes' consensus (the attackers' rows are theirs to choose).
            extra={"consensus_distance": self.consensus_distance(state.params if self.byzantine is None else
                                                                 state.params[self.honest(state.params.device)]),
                   "bytes_per_node": sent / self.nodes},
        )

    @staticmethod
    def consensus_distance(x: torch.Tensor) -> float:
        """:func:`~fedsim.topology.gossip.consensus_distance` in the parameters' own dtype.

        Every round reports it, so it is computed in two passes over X without a float64 copy
        (which took 15 ms of a 100 ms D-PSGD round at n = 256); float32 rounding is about 1e-6
        relative, far below what the metric is read for.
        """
        if x.dtype == torch.float64:
            return consensus_distance(x)
        return float(torch.linalg.vector_norm(x - x.mean(dim=0)).double() ** 2 / x.shape[0])

    def full_message_bits(self, state: ServerState) -> int:
        """Bits of one uncompressed parameter vector."""
        return FLOAT_BITS * state.params.shape[1]

    def evaluate_extra(self, state: ServerState, evaluate: Callable[[torch.Tensor], tuple[float, float]]) -> dict[str, float]:
        """Mean and worst test accuracy over the (honest) nodes' own models."""
        accuracies = [evaluate(row)[0] for row in state.params[self.honest(state.params.device)]]
        return {"node_accuracy_mean": sum(accuracies) / len(accuracies), "node_accuracy_min": min(accuracies)}
