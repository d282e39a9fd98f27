"""CHOCO-SGD: decentralized SGD with compressed gossip.

Koloskova, Stich and Jaggi, "Decentralized Stochastic Optimization and Gossip Algorithms with
Compressed Communication", ICML 2019, https://arxiv.org/abs/1902.00340 (Algorithm 2); spec
Appendix A.3.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from fedsim.algorithms.base import RoundMetrics, ServerState
from fedsim.algorithms.decentralized import Decentralized
from fedsim.client.task import ClientTask
from fedsim.compression.base import Compressor, compress_rows
from fedsim.errors import FedsimError
from fedsim.runtimes.base import Runtime
from fedsim.seeding import torch_generators
from fedsim.topology.gossip import choco_consensus
from fedsim.topology.topology import Topology

__all__ = ["ChocoSGD"]


class ChocoSGD(Decentralized):
    """CHOCO-SGD: local SGD, compressed update of public copies, then a damped consensus step.

    Each node keeps its iterate $x_i$ and a public copy $\\hat x_i$ that all its neighbours
    track exactly (``extras["x_hat"]``, zero at the start). Per round:

    1. $x_i^{t+1/2} = \\mathrm{local}(x_i^t)$ (tau local SGD steps; one step is $x_i - \\eta g_i$);
    2. $q_i = Q(x_i^{t+1/2} - \\hat x_i)$ is sent to the neighbours;
    3. $\\hat x_i \\leftarrow \\hat x_i + q_i$;
    4. $x_i^{t+1} = x_i^{t+1/2} + \\gamma \\sum_j w_{ij} (\\hat x_j - \\hat x_i)$.

    With the identity compressor and $\\gamma = 1$ this is D-PSGD in adapt-then-combine form.
    For symmetric doubly stochastic W the node average follows the same virtual SGD sequence.

    Parameters
    ----------
    topology : Topology
        Graphs and mixing matrices.
    task : ClientTask
        Each node's local SGD.
    compressor : Compressor
        Q, a contraction $\\mathbb E\\|Q(x) - x\\|^2 \\le (1-\\delta)\\|x\\|^2$ for the theory;
        node i's randomness in round t comes from the ``(seed, "choco_compression", t, i)`` stream.
    gamma : float
        Consensus step size in (0, 1].
    """

    def __init__(self, *, topology: Topology, task: ClientTask, compressor: Compressor, gamma: float, seed: int = 0) -> None:
        if not 0.0 < gamma <= 1.0:
            raise FedsimError(f"choco: gamma={gamma} must be in (0, 1]")
        super().__init__(topology=topology, task=task, seed=seed)
        self.compressor = compressor
        self.gamma = gamma
        self.compressor_states: list[dict[str, torch.Tensor]] = [{} for _ in range(self.nodes)]

    def init(self, params: torch.Tensor) -> ServerState:
        self.compressor.guarantee(params.numel())  # error feedback refuses a non-contractive Q before round 1
        state = super().init(params)
        state.extras["x_hat"] = torch.zeros_like(state.params)
        return state

    def round(self, state: ServerState, rnd: int, runtime: Runtime) -> RoundMetrics:
        result = self.local_updates(state, rnd, runtime)
        x_half = state.params + self.corrupt(result.updates, rnd).to(state.params.device)
        x_hat = state.extras["x_hat"]
        # The nodes' seeds in one vectorized derivation (the same streams as one torch_generator per node).
        generators = torch_generators(self.seed, "choco_compression", rnd, np.arange(self.nodes), device=x_half.device)
        q, bits, self.compressor_states = compress_rows(self.compressor, x_half - x_hat, generators, self.compressor_states)
        x_hat = x_hat + q
        state.extras["x_hat"] = x_hat
        state.params = choco_consensus(x_half, x_hat, self.mixing(rnd, x_half.device, x_half.dtype), self.gamma)
        return self.round_metrics(state, rnd, torch.tensor(bits, dtype=torch.int64), result.train_loss)

    def state_dict(self) -> dict[str, Any]:
        return {"compressor_states": self.compressor_states}

    def load_state_dict(self, sd: dict[str, Any]) -> None:
        self.compressor_states = list(sd["compressor_states"])
