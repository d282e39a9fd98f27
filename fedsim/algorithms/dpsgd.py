"""D-PSGD: decentralized parallel SGD with gossip averaging.

Lian, Zhang, Zhang, Hsieh, Zhang and Liu, "Can Decentralized Algorithms Outperform
Centralized Algorithms?", NeurIPS 2017, https://arxiv.org/abs/1705.09056.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from fedsim.algorithms.base import RoundMetrics, ServerState
from fedsim.algorithms.decentralized import Decentralized
from fedsim.client.task import ClientTask
from fedsim.errors import FedsimError
from fedsim.runtimes.base import Runtime
from fedsim.topology.topology import Topology

__all__ = ["DPSGD", "FORMS"]

FORMS = ("atc", "cta")


class DPSGD(Decentralized):
    """Decentralized SGD: tau local SGD steps per node, then one gossip step.

    With $U^t$ the (n, d) matrix of local updates (``local(x_i) - x_i``; $-\\eta G^t$ for one step):

    * ``atc`` (adapt then combine, Koloskova et al., ICML 2020, Algorithm 1): $X^{t+1} = W (X^t + U^t)$;
    * ``cta`` (combine then adapt, Lian et al. 2017 Algorithm 1): $X^{t+1} = W X^t + U^t$,
      gradients taken at the node's own old iterate.

    For doubly stochastic W both keep the virtual average on the SGD path
    $\\bar x^{t+1} = \\bar x^t + \\frac1n\\sum_i u_i^t$, and with $W = \\mathbf{1}\\mathbf{1}^\\top/n$
    ``atc`` is parallel SGD (local SGD when tau > 1).

    Parameters
    ----------
    topology : Topology
        Graphs and mixing matrices (static or time-varying).
    task : ClientTask
        Each node's local SGD (learning rate eta, tau = ``local.steps`` steps per round).
    form : {"atc", "cta"} (default: "atc")
        Order of the local step and the gossip step.
    mixing_rule : callable or None (default: None, plain gossip)
        A robust replacement of the mixing step (:class:`~fedsim.robustness.gossip.RobustGossip`).
    """

    def __init__(self, *, topology: Topology, task: ClientTask, form: str = "atc", seed: int = 0,
                 mixing_rule: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None) -> None:
        if form not in FORMS:
            raise FedsimError(f"dpsgd: form={form!r} unknown; choose one of {', '.join(FORMS)}")
        super().__init__(topology=topology, task=task, seed=seed, mixing_rule=mixing_rule)
        self.form = form

    def round(self, state: ServerState, rnd: int, runtime: Runtime) -> RoundMetrics:
        result = self.local_updates(state, rnd, runtime)
        x, u = state.params, self.corrupt(result.updates, rnd).to(state.params.device)
        w = self.mixing(rnd, x.device, x.dtype)
        state.params = self.mix(x + u, w) if self.form == "atc" else self.mix(x, w) + u
        return self.round_metrics(state, rnd, self.full_message_bits(state), result.train_loss)
