"""The ``topology:`` section: the communication graph of a decentralized run.

It names the graph (a family, a YAML spec path or an inline spec, see
:mod:`fedsim.topology.specs`) and optionally overrides its mixing matrix; the node count is
``data.num_clients`` (node i trains on client i's partition).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import Field, field_validator

from fedsim.config.base import Section
from fedsim.errors import FedsimError

if TYPE_CHECKING:
    from fedsim.topology.specs import GraphSpec
    from fedsim.topology.topology import Topology

__all__ = ["TopologySection"]


class TopologySection(Section):
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
        # networkx and scipy load only for a run that has a graph (0.3 s of every start otherwise)
        from fedsim.topology.specs import load_spec, parse_spec

        return load_spec(spec) if isinstance(spec, str) else parse_spec(spec, where="topology.spec")

    def build(self, nodes: int) -> Topology:
        """Graphs and validated mixing matrices for ``nodes`` nodes."""
        from fedsim.topology.specs import build_topology

        return build_topology(self._parse(self.spec), nodes, self.mixing, self.gap)
