"""Topology specs (YAML or family name), their family registry, and :func:`build_topology`.

A spec names a graph family, the family's own parameters and optionally a mixing kind::

    family: random_regular
    degree: 4
    seed: 0
    mixing: metropolis_hastings      # or {kind: parametric, gap: 0.1}

Families live in a small registry (``register_family``), as Opacus keeps its accountants;
each spec class builds the period of graphs for a node count, and :func:`build_topology`
attaches the mixing matrices, validates them and returns the
:class:`~fedsim.topology.topology.Topology` the algorithms use.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import networkx as nx
import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from fedsim.errors import FedsimError
from fedsim.topology import generators as gen
from fedsim.topology.edgelist import read_edge_list
from fedsim.topology.mixing import default_mixing, mixing_kinds, mixing_matrix
from fedsim.topology.timevarying import one_peer_exponential_graphs
from fedsim.topology.topology import Topology
from fedsim.topology.validate import validate_schedule

__all__ = [
    "MixingSpec",
    "GraphSpec",
    "register_family",
    "family_names",
    "parse_spec",
    "load_spec",
    "build_topology",
]


class MixingSpec(BaseModel):
    """Which mixing matrix to put on the graph; ``gap`` only for ``parametric``."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: str
    gap: float | None = None

    @field_validator("kind")
    @classmethod
    def _known(cls, kind: str) -> str:
        if kind not in mixing_kinds():
            raise ValueError(f"unknown mixing {kind!r}; choose one of {', '.join(mixing_kinds())}")
        return kind


class GraphSpec(BaseModel):
    """Base of every family spec: ``family`` plus an optional mixing kind."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    family: str
    mixing: MixingSpec | None = None

    @field_validator("mixing", mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        return {"kind": value} if isinstance(value, str) else value

    def graphs(self, n: int) -> list[nx.Graph]:
        """The graphs of one period for ``n`` nodes (one graph for a static topology)."""
        raise NotImplementedError


class RingSpec(GraphSpec):
    family: Literal["ring"] = "ring"

    def graphs(self, n: int) -> list[nx.Graph]:
        return [gen.ring_graph(n)]


class TorusSpec(GraphSpec):
    family: Literal["torus"] = "torus"
    rows: int | None = None

    def graphs(self, n: int) -> list[nx.Graph]:
        return [gen.torus_graph(n, self.rows)]


class GridSpec(GraphSpec):
    family: Literal["grid"] = "grid"
    rows: int | None = None

    def graphs(self, n: int) -> list[nx.Graph]:
        return [gen.grid_graph(n, self.rows)]


class CompleteSpec(GraphSpec):
    family: Literal["complete"] = "complete"

    def graphs(self, n: int) -> list[nx.Graph]:
        return [gen.complete_graph(n)]


class StarSpec(GraphSpec):
    family: Literal["star"] = "star"

    def graphs(self, n: int) -> list[nx.Graph]:
        return [gen.star_graph(n)]


class HypercubeSpec(GraphSpec):
    family: Literal["hypercube"] = "hypercube"

    def graphs(self, n: int) -> list[nx.Graph]:
        return [gen.hypercube_graph(n)]


class RandomRegularSpec(GraphSpec):
    family: Literal["random_regular"] = "random_regular"
    degree: int = 4
    seed: int = 0

    def graphs(self, n: int) -> list[nx.Graph]:
        return [gen.random_regular_graph(n, self.degree, self.seed)]


class ErdosRenyiSpec(GraphSpec):
    family: Literal["erdos_renyi"] = "erdos_renyi"
    p: float | None = None
    seed: int = 0

    def graphs(self, n: int) -> list[nx.Graph]:
        return [gen.erdos_renyi_graph(n, self.p, self.seed)]


class WattsStrogatzSpec(GraphSpec):
    family: Literal["watts_strogatz"] = "watts_strogatz"
    k: int = 4
    p: float = 0.1
    seed: int = 0

    def graphs(self, n: int) -> list[nx.Graph]:
        return [gen.watts_strogatz_graph(n, self.k, self.p, self.seed)]


class ExponentialSpec(GraphSpec):
    family: Literal["exponential"] = "exponential"

    def graphs(self, n: int) -> list[nx.Graph]:
        return [gen.exponential_graph(n)]


class DirectedExponentialSpec(GraphSpec):
    family: Literal["directed_exponential"] = "directed_exponential"

    def graphs(self, n: int) -> list[nx.Graph]:
        return [gen.directed_exponential_graph(n)]


class OnePeerExponentialSpec(GraphSpec):
    family: Literal["one_peer_exponential"] = "one_peer_exponential"

    def graphs(self, n: int) -> list[nx.Graph]:
        return one_peer_exponential_graphs(n)


class EdgeListSpec(GraphSpec):
    """Graph read from ``path`` (relative paths resolve against the spec file's folder)."""

    family: Literal["edge_list"] = "edge_list"
    path: Path

    def graphs(self, n: int) -> list[nx.Graph]:
        return [read_edge_list(self.path, n)]


_FAMILIES: dict[str, type[GraphSpec]] = {}


def register_family(name: str, spec_cls: type[GraphSpec], force: bool = False) -> None:
    """Register a spec class under ``name``; refuses to replace one unless ``force``."""
    if name in _FAMILIES and not force:
        raise FedsimError(f"topology family {name!r} is already registered")
    _FAMILIES[name] = spec_cls


for _cls in (RingSpec, TorusSpec, GridSpec, CompleteSpec, StarSpec, HypercubeSpec, RandomRegularSpec, ErdosRenyiSpec,
             WattsStrogatzSpec, ExponentialSpec, DirectedExponentialSpec, OnePeerExponentialSpec, EdgeListSpec):
    register_family(_cls.model_fields["family"].default, _cls)


def family_names() -> list[str]:
    """Registered family names."""
    return list(_FAMILIES)


def parse_spec(data: str | dict[str, Any] | GraphSpec, *, where: str = "topology", base_dir: Path | None = None) -> GraphSpec:
    """A spec from a family name, a mapping (parsed YAML) or an existing spec.

    ``where`` names the source in error messages; relative edge-list paths resolve
    against ``base_dir``.
    """
    if isinstance(data, GraphSpec):
        return data
    if isinstance(data, str):
        data = {"family": data}
    if not isinstance(data, dict) or "family" not in data:
        raise FedsimError(f"{where}: a topology spec is a mapping with a 'family' key, one of {', '.join(_FAMILIES)}")
    family = data["family"]
    if family not in _FAMILIES:
        raise FedsimError(f"{where}: unknown family {family!r}; choose one of {', '.join(_FAMILIES)}")
    try:
        spec = _FAMILIES[family].model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        loc = ".".join(str(p) for p in first["loc"]) or "spec"
        raise FedsimError(f"{where}: {loc}: {first['msg']}") from None
    if isinstance(spec, EdgeListSpec) and base_dir is not None and not spec.path.is_absolute():
        spec = spec.model_copy(update={"path": base_dir / spec.path})
    return spec


def load_spec(source: str | Path) -> GraphSpec:
    """A spec from a YAML file path, or the defaults of a family given by name."""
    path = Path(source)
    if path.suffix in (".yaml", ".yml") or path.is_file():
        if not path.is_file():
            raise FedsimError(f"topology spec {path}: file not found")
        try:
            data = yaml.safe_load(path.read_text())
        except yaml.YAMLError as err:
            raise FedsimError(f"topology spec {path}: invalid YAML ({str(err).splitlines()[0]})") from None
        return parse_spec(data, where=f"topology spec {path}", base_dir=path.parent)
    if str(source) not in _FAMILIES:
        raise FedsimError(f"topology {source!r} is neither a YAML file nor a family; families: {', '.join(_FAMILIES)}")
    return parse_spec(str(source))


def build_topology(spec: str | dict[str, Any] | GraphSpec, n: int, mixing: str | None = None,
                   gap: float | None = None, *, validate: bool = True) -> Topology:
    """Build the graphs and mixing matrices of ``spec`` for ``n`` nodes.

    ``mixing``/``gap`` override the spec's mixing; otherwise the spec's, otherwise the graph's
    default (Metropolis-Hastings, or column-stochastic for directed graphs).

    Raises
    ------
    FedsimError
        On bad parameters, a bad edge list, or (with ``validate``) a matrix failing
        :func:`fedsim.topology.validate.validate_schedule`, e.g. a disconnected graph.
    """
    spec = parse_spec(spec)
    graphs = spec.graphs(n)
    if mixing is not None:
        kind = mixing
    elif spec.mixing is not None:
        kind, gap = spec.mixing.kind, spec.mixing.gap
    else:
        kind = default_mixing(graphs[0])
    matrices = tuple(mixing_matrix(g, kind, gap) for g in graphs)
    if validate:
        validate_schedule(matrices, graphs)
    return Topology(family=spec.family, mixing=kind, graphs=tuple(graphs), matrices=matrices)
