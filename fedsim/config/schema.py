"""The root of the experiment schema: one field per top-level section of an experiment YAML.

Each section lives in the module of its topic, on the one base :class:`fedsim.config.base.Section`
(unknown keys and non-finite floats refused); each algorithm, partition and runtime is a model
of its own, chosen by its ``kind``, with a ``build()`` that makes its runtime object:

====================  ==============================================================
``data:``             :mod:`fedsim.config.data`
``model:``            :mod:`fedsim.config.model`
``algorithm:``        :mod:`fedsim.config.federated` (FedAvg family, parallel SGD),
                      :mod:`fedsim.config.decentralized` (gossip, D-PSGD, CHOCO),
                      :mod:`fedsim.config.privacy` (dp_fed_ls, dp_lssgd)
``topology:``         :mod:`fedsim.config.topology`
``runtime:``          :mod:`fedsim.config.runtime` (also ``flower:``)
``compression:``      :mod:`fedsim.config.compression`
``privacy:``          :mod:`fedsim.config.privacy`
``robustness:``       :mod:`fedsim.config.robustness` (also ``algorithm.aggregator``)
``systems:``          :mod:`fedsim.config.systems` (``fedbuff``, ``fedasync``: :mod:`fedsim.config.asynchronous`)
``evaluation:``       :mod:`fedsim.config.output` (also ``output:``)
====================  ==============================================================

A new top-level section (e.g. ``systems:``) gets a module of its own next to these,
and one field below; a new algorithm joins :data:`AlgorithmSection`.
"""

from __future__ import annotations

from typing import Annotated, Union

from pydantic import Field, NonNegativeInt, model_validator
from pydantic_core import PydanticCustomError

from fedsim.config.asynchronous import FedAsyncConfig, FedBuffConfig
from fedsim.config.base import Section
from fedsim.config.compression import CompressionConfig
from fedsim.config.data import DataConfig
from fedsim.config.decentralized import ADPSGDConfig, ChocoConfig, DPSGDConfig, GossipConfig, PairwiseGossipConfig
from fedsim.config.federated import (
    FedAdagradConfig,
    FedAdamConfig,
    FedAvgConfig,
    FedAvgMConfig,
    FedNovaConfig,
    FedProxConfig,
    FedYogiConfig,
    ParallelSGDConfig,
    ScaffoldConfig,
)
from fedsim.config.model import ModelConfig
from fedsim.config.output import EvaluationConfig, OutputConfig
from fedsim.config.privacy import DPFedLSConfig, DPLSSGDConfig, PrivacyConfig
from fedsim.config.robustness import RobustnessConfig
from fedsim.config.runtime import FlowerConfig, RuntimeSection, SerialRuntimeConfig
from fedsim.config.sweep import SweepConfig
from fedsim.config.systems import SystemsConfig
from fedsim.config.topology import TopologySection
from fedsim.robustness.byzantine import BYZANTINE_ATTACKS, OMNISCIENT_ATTACKS

__all__ = ["AlgorithmSection", "ExperimentConfig"]


AlgorithmSection = Annotated[
    Union[
        FedAvgConfig, ParallelSGDConfig, FedProxConfig, FedAvgMConfig, FedAdagradConfig, FedAdamConfig, FedYogiConfig, ScaffoldConfig,
        FedNovaConfig,
        GossipConfig, DPSGDConfig, ChocoConfig, PairwiseGossipConfig, ADPSGDConfig,
        DPFedLSConfig, DPLSSGDConfig,
        FedBuffConfig, FedAsyncConfig,
    ],
    Field(discriminator="kind"),
]


class ExperimentConfig(Section):
    """A whole experiment. See README.md for the reference of every key."""

    seed: NonNegativeInt = 0
    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    algorithm: AlgorithmSection = Field(default_factory=FedAvgConfig)
    topology: TopologySection = Field(default_factory=TopologySection)
    runtime: RuntimeSection = Field(default_factory=SerialRuntimeConfig)
    compression: CompressionConfig = Field(default_factory=CompressionConfig)
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig)
    output: OutputConfig = Field(default_factory=OutputConfig)
    privacy: PrivacyConfig | None = None
    flower: FlowerConfig = Field(default_factory=FlowerConfig)
    sweep: SweepConfig | None = Field(None, description="Read by `fedsim sweep` only")
    robustness: RobustnessConfig | None = None
    systems: SystemsConfig | None = None

    @model_validator(mode="after")
    def _systems_has_a_clocked_algorithm(self) -> "ExperimentConfig":
        if self.systems is None:
            return self
        if self.privacy is not None:
            # Availability changes who can be sampled and deadlines depend on upload sizes: the
            # sampling scheme the accountant assumes would no longer hold.
            raise PydanticCustomError("fedsim", "systems: not combinable with privacy: (the accountant's sampling scheme "
                                      "assumes every client can be drawn)", {})
        clocked = ("fedavg", "fedprox", "fedavgm", "fedadam", "fedyogi", "fedadagrad", "scaffold", "fednova", "fedbuff", "fedasync",
                   "async_gossip", "adpsgd")
        if self.algorithm.kind not in clocked:
            raise PydanticCustomError("fedsim", "systems: algorithm.kind={got} does not run on the simulated clock "
                                      "(allowed: {allowed})", {"got": self.algorithm.kind, "allowed": ", ".join(clocked)})
        return self

    @model_validator(mode="after")
    def _robust_aggregation_keeps_privacy(self) -> "ExperimentConfig":
        # The order (fedsim.config.robustness): local SGD -> compress -> clip to G -> Byzantine
        # rows replaced -> aggregate -> noise -> smoothing. DP-Fed-LS calibrates its noise to the
        # sensitivity G of the *sum* of clipped updates: a robust rule before the noise has another
        # sensitivity, and an omniscient attacker's rows move with an honest client's update, so in
        # both cases the reported epsilon would not hold.
        if self.privacy is None:
            return self
        kind = getattr(getattr(self.algorithm, "aggregator", None), "kind", "mean")
        if kind != "mean":
            raise PydanticCustomError("fedsim", "algorithm.aggregator: '{kind}' with privacy: the DP noise is calibrated to the "
                                      "mean's sensitivity (allowed with privacy: mean)", {"kind": kind})
        byzantine = self.robustness.byzantine if self.robustness is not None else None
        if byzantine is not None and byzantine.fraction > 0 and byzantine.attack in OMNISCIENT_ATTACKS:
            raise PydanticCustomError("fedsim", "robustness.byzantine.attack: '{attack}' with privacy: an omniscient attacker "
                                      "reads the honest clipped updates, so one client moves more than G of the noised sum "
                                      "(allowed with privacy: {allowed})",
                                      {"attack": byzantine.attack,
                                       "allowed": ", ".join(a for a in (*BYZANTINE_ATTACKS, "label_flip") if a not in OMNISCIENT_ATTACKS)})
        return self

    @model_validator(mode="after")
    def _privacy_has_a_private_algorithm(self) -> "ExperimentConfig":
        private = ("dp_fed_ls", "dp_lssgd")
        if self.privacy is not None and self.algorithm.kind not in private:
            raise PydanticCustomError("fedsim", "privacy: needs a private algorithm.kind (allowed: {allowed}), got {got}",
                                      {"allowed": ", ".join(private), "got": self.algorithm.kind})
        return self

    @model_validator(mode="after")
    def _cohort_fits(self) -> "ExperimentConfig":
        per_round = getattr(self.algorithm, "clients_per_round", None)
        uniform = getattr(getattr(self.algorithm, "participation", None), "kind", "uniform") == "uniform"
        if per_round is not None and uniform and per_round > self.data.num_clients:
            raise PydanticCustomError(
                "fedsim",
                "algorithm.clients_per_round: {got} exceeds data.num_clients={n} (allowed: 1..{n})",
                {"got": per_round, "n": self.data.num_clients},
            )
        return self
