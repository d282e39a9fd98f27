"""Config models of the decentralized rules (gossip, D-PSGD, CHOCO-SGD) and the ``topology`` section.

The node count is ``data.num_clients``: node i trains on client i's partition. The
``topology`` section names the graph (a family, a YAML spec path or an inline spec) and
optionally overrides its mixing matrix.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, NonNegativeFloat, PositiveFloat, PositiveInt, field_validator

from fedsim.client.local import LocalSGD
from fedsim.client.task import ClientTask
from fedsim.errors import FedsimError
from fedsim.topology.specs import GraphSpec, Topology, build_topology, load_spec, parse_spec

if TYPE_CHECKING:
    from fedsim.algorithms.base import Algorithm
    from fedsim.config.schema import BuildContext

__all__ = ["TopologySection", "GossipConfig", "DPSGDConfig", "ChocoConfig"]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TopologySection(_Section):
    """Communication graph of a decentralized run."""

    spec: str | dict[str, Any] = Field("ring", description="Family name, path to a YAML topology spec, or an inline spec mapping")
    mixing: str | None = Field(None, description="Mixing kind overriding the spec's (metropolis_hastings, max_degree, uniform, lazy, parametric, column_stochastic)")
    gap: float | None = Field(None, description="Spectral gap, for mixing: parametric")

    @field_validator("spec")
    @classmethod
    def _loads(cls, spec: str | dict[str, Any]) -> str | dict[str, Any]:
        try:
            cls._parse(spec)
        except FedsimError as err:
            raise ValueError(str(err)) from None
        return spec

    @staticmethod
    def _parse(spec: str | dict[str, Any]) -> GraphSpec:
        return load_spec(spec) if isinstance(spec, str) else parse_spec(spec, where="topology.spec")

    def build(self, nodes: int) -> Topology:
        """Graphs and validated mixing matrices for ``nodes`` nodes."""
        return build_topology(self._parse(self.spec), nodes, self.mixing, self.gap)


class _LocalTraining(_Section):
    rounds: PositiveInt = 50
    local_steps: PositiveInt = Field(1, description="Local SGD steps tau between gossip steps")
    batch_size: PositiveInt = 32
    lr: PositiveFloat = 0.05
    weight_decay: NonNegativeFloat = 0.0

    def task(self) -> ClientTask:
        return ClientTask(LocalSGD(lr=self.lr, batch_size=self.batch_size, steps=self.local_steps, weight_decay=self.weight_decay))


class GossipConfig(_Section):
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
        return GossipAveraging(topology=ctx.topology.build(ctx.data.num_clients), task=task,
                               gossip_steps=self.gossip_steps, seed=ctx.seed)


class DPSGDConfig(_LocalTraining):
    """D-PSGD (Lian et al. 2017) in adapt-then-combine or combine-then-adapt form."""

    kind: Literal["dpsgd"] = "dpsgd"
    form: Literal["atc", "cta"] = Field("atc", description="atc: X <- W (X - eta G); cta: X <- W X - eta G")

    def build(self, ctx: BuildContext) -> Algorithm:
        from fedsim.algorithms.dpsgd import DPSGD

        return DPSGD(topology=ctx.topology.build(ctx.data.num_clients), task=self.task(), form=self.form, seed=ctx.seed)


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

        return ChocoSGD(topology=ctx.topology.build(ctx.data.num_clients), task=self.task(),
                        compressor=self._compressor(self.compressor), gamma=self.gamma, seed=ctx.seed)
