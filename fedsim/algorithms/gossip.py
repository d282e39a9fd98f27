"""Gossip averaging: average consensus $X^{t+1} = W X^t$ (Xiao and Boyd, "Fast Linear Iterations for
Distributed Averaging", 2004)."""

from __future__ import annotations

from fedsim.algorithms.base import RoundMetrics, ServerState
from fedsim.algorithms.decentralized import Decentralized
from fedsim.client.task import ClientTask
from fedsim.runtimes.base import Runtime
from fedsim.topology.gossip import gossip
from fedsim.topology.topology import Topology

__all__ = ["GossipAveraging"]


class GossipAveraging(Decentralized):
    """Average consensus by repeated gossip, optionally after one round of local training.

    With ``task`` given, round 0 first trains every node locally from the common start, so the
    nodes hold different models (one-shot local training); every round then applies
    ``gossip_steps`` products $X \\leftarrow W X$. For connected graphs and doubly stochastic W
    the node average is preserved exactly and the consensus error contracts as
    $e_{t+1} \\le |\\lambda_2(W)|^2 e_t$ per step (Koloskova, Stich and Jaggi, ICML 2019).

    Parameters
    ----------
    topology : Topology
        Graphs and mixing matrices.
    task : ClientTask or None (default: None)
        Local training done once, in round 0.
    gossip_steps : int (default: 1)
        Gossip products per round.
    """

    def __init__(self, *, topology: Topology, task: ClientTask | None = None, gossip_steps: int = 1, seed: int = 0) -> None:
        super().__init__(topology=topology, task=task, seed=seed)
        self.gossip_steps = gossip_steps

    def round(self, state: ServerState, rnd: int, runtime: Runtime) -> RoundMetrics:
        loss = None
        if rnd == 0 and self.task is not None:
            result = self.local_updates(state, rnd, runtime)
            state.params = state.params + result.updates.to(state.params.device)
            loss = result.train_loss
        for step in range(self.gossip_steps):
            state.params = gossip(state.params, self.mixing(rnd * self.gossip_steps + step, state.params.device, state.params.dtype))
        return self.round_metrics(state, rnd, self.gossip_steps * self.full_message_bits(state), loss)
