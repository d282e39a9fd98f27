"""Config sections of the decentralized rules (gossip averaging, D-PSGD, CHOCO-SGD, and on the
simulated clock pairwise gossip and AD-PSGD).

Each builds its rule on the graph of the ``topology:`` section (:mod:`fedsim.config.topology`)
for ``data.num_clients`` nodes; without that section the graph is a ring.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import Field, NonNegativeFloat, NonNegativeInt, PositiveFloat, PositiveInt, field_validator

from fedsim.client.local import LocalSGD
from fedsim.client.task import ClientTask
from fedsim.config.base import BuildContext, Section
from fedsim.config.topology import TopologySection
from fedsim.errors import FedsimError
from fedsim.robustness.gossip import RobustGossip

if TYPE_CHECKING:
    from fedsim.algorithms.base import Algorithm
    from fedsim.topology.topology import Topology

__all__ = ["ADPSGDConfig", "ChocoConfig", "DPSGDConfig", "GossipConfig", "PairwiseGossipConfig"]


def _topology(ctx: BuildContext) -> Topology:
    """The run's graph for ``data.num_clients`` nodes (a ring when there is no ``topology:`` section)."""
    return (ctx.topology or TopologySection()).build(ctx.data.num_clients)


class _LocalTraining(Section):
    rounds: PositiveInt = 50
    local_steps: PositiveInt = Field(1, description="Local SGD steps tau between gossip steps")
    batch_size: PositiveInt = 32
    lr: PositiveFloat = 0.05
    weight_decay: NonNegativeFloat = 0.0

    def task(self) -> ClientTask:
        return ClientTask(LocalSGD(lr=self.lr, batch_size=self.batch_size, steps=self.local_steps, weight_decay=self.weight_decay))


class GossipConfig(Section):
    """Average consensus; with ``local_steps`` > 0 each node first trains locally in round 0."""

    kind: Literal["gossip"] = "gossip"
    rounds: PositiveInt = 20
    gossip_steps: PositiveInt = 1
    local_steps: int = Field(0, ge=0, description="Local SGD steps before averaging (0: average the initial models)")
    batch_size: PositiveInt = 32
    lr: PositiveFloat = 0.05

    def build(self, ctx: BuildContext) -> Algorithm:
        from fedsim.algorithms.gossip import GossipAveraging

        task = ClientTask(LocalSGD(lr=self.lr, batch_size=self.batch_size, steps=self.local_steps)) if self.local_steps else None
        return GossipAveraging(topology=_topology(ctx), task=task,
                               gossip_steps=self.gossip_steps, seed=ctx.seed)


class RobustGossipConfig(Section):
    """``algorithm.robust_gossip``: ClippedGossip (He et al. 2022) or trimmed mean over neighbours."""

    kind: Literal["clipped", "trimmed_mean"] = "clipped"
    tau: PositiveFloat = Field(1.0, description="clipped: radius of the self-centered clipping")
    trim: NonNegativeInt = Field(1, description="trimmed_mean: values dropped per side and coordinate")

    def build(self) -> RobustGossip:
        return RobustGossip(self.kind, self.tau, self.trim)

    def check(self, topology: Topology) -> None:
        """Refuse a trimmed mean that some closed neighbourhood ``{j : W_ij > 0}`` is too small for
        (checked when the run is built, not at round 1)."""
        if self.kind != "trimmed_mean":
            return
        smallest = min(int(np.diff(m.tocsr().indptr).min()) for m in topology.matrices)
        if smallest <= 2 * self.trim:
            raise FedsimError(f"algorithm.robust_gossip.trim={self.trim} needs closed neighbourhoods of more than {2 * self.trim} "
                              f"nodes; the {topology.family} topology with {topology.nodes} nodes has one of {smallest}")


class DPSGDConfig(_LocalTraining):
    """D-PSGD (Lian et al. 2017) in adapt-then-combine or combine-then-adapt form."""

    kind: Literal["dpsgd"] = "dpsgd"
    form: Literal["atc", "cta"] = Field("atc", description="atc: X <- W (X - eta G); cta: X <- W X - eta G")
    robust_gossip: RobustGossipConfig | None = Field(None, description="Robust mixing step instead of W X (Byzantine nodes)")

    def build(self, ctx: BuildContext) -> Algorithm:
        from fedsim.algorithms.dpsgd import DPSGD

        topology = _topology(ctx)
        if self.robust_gossip is not None:
            self.robust_gossip.check(topology)
        rule = self.robust_gossip.build() if self.robust_gossip is not None else None
        return DPSGD(topology=topology, task=self.task(), form=self.form, seed=ctx.seed, mixing_rule=rule)


class ChocoConfig(_LocalTraining):
    """CHOCO-SGD (Koloskova, Stich and Jaggi 2019) with any registered compressor."""

    kind: Literal["choco"] = "choco"
    gamma: float = Field(1.0, gt=0.0, le=1.0, description="Consensus step size gamma in (0, 1]")
    compressor: dict[str, Any] = Field(default_factory=lambda: {"name": "identity"},
                                       description="Compressor Q: name plus its parameters, e.g. {name: top_k, ratio: 0.1}")

    @field_validator("compressor")
    @classmethod
    def _builds(cls, value: dict[str, Any]) -> dict[str, Any]:
        if "name" not in value:
            raise ValueError("needs a 'name' key, e.g. {name: top_k, ratio: 0.1}")
        try:
            cls._compressor(value)
        except FedsimError as err:
            raise ValueError(str(err)) from None
        return value

    @staticmethod
    def _compressor(value: dict[str, Any]) -> Any:
        from fedsim.compression import build_compressor

        return build_compressor(**value)

    def build(self, ctx: BuildContext) -> Algorithm:
        from fedsim.algorithms.choco import ChocoSGD

        return ChocoSGD(topology=_topology(ctx), task=self.task(),
                        compressor=self._compressor(self.compressor), gamma=self.gamma, seed=ctx.seed)


def _clock(ctx: BuildContext, kind: str):
    if ctx.systems is None:
        raise FedsimError(f"algorithm.kind={kind}: needs a systems: section (node speeds and links set the event times)")
    return ctx.systems.build(ctx.data, ctx.seed)


class PairwiseGossipConfig(Section):
    """Randomized pairwise gossip (Boyd et al. 2006) on the simulated clock; a round is n exchanges."""

    kind: Literal["async_gossip"] = "async_gossip"
    rounds: PositiveInt = 20

    def build(self, ctx: BuildContext) -> Algorithm:
        from fedsim.algorithms.async_gossip import AsyncGossip

        return AsyncGossip(topology=_topology(ctx), task=None, clock=_clock(ctx, self.kind), seed=ctx.seed)


class ADPSGDConfig(_LocalTraining):
    """AD-PSGD (Lian et al. 2018) on the simulated clock; a round is n node iterations."""

    kind: Literal["adpsgd"] = "adpsgd"

    def build(self, ctx: BuildContext) -> Algorithm:
        from fedsim.algorithms.async_gossip import AsyncGossip

        return AsyncGossip(topology=_topology(ctx), task=self.task(), clock=_clock(ctx, self.kind), seed=ctx.seed)
