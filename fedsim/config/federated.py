"""The FedAvg family's sections (FedAvg, FedProx, FedAvgM, FedAdam, FedYogi, FedAdagrad, SCAFFOLD),
parallel SGD, and their shared parts: participation, learning-rate schedules, heterogeneous local work.

A new server-side rule of the FedAvg family is a ``FedAvgConfig`` subclass here with its own
``kind``, added to :data:`fedsim.config.schema.AlgorithmSection`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import Field, NonNegativeFloat, PositiveFloat, PositiveInt, model_validator
from pydantic_core import PydanticCustomError

from fedsim.algorithms import federated
from fedsim.algorithms.base import Algorithm
from fedsim.algorithms.fedavg import FedAvg
from fedsim.client.local import LocalSGD
from fedsim.client.state import ClientStateStore
from fedsim.client.task import ClientTask
from fedsim.config.base import BuildContext, Section
from fedsim.config.robustness import AggregatorConfig

__all__ = [
    "FedAdagradConfig", "FedAdamConfig", "FedAvgConfig", "FedAvgMConfig", "FedNovaConfig", "FedProxConfig", "FedYogiConfig", "FullParticipation",
    "LRScheduleConfig", "LocalWorkConfig", "ParallelSGDConfig", "Participation", "PoissonParticipation", "ScaffoldConfig",
    "UniformParticipation",
]


class UniformParticipation(Section):
    kind: Literal["uniform"] = "uniform"

    def build(self, clients_per_round: int) -> federated.UniformSampling:
        return federated.UniformSampling(clients_per_round)


class PoissonParticipation(Section):
    kind: Literal["poisson"] = "poisson"
    q: float = Field(..., gt=0, le=1, description="Each client joins a round independently with probability q in (0, 1]")

    def build(self, clients_per_round: int) -> federated.PoissonSampling:
        return federated.PoissonSampling(self.q)


class FullParticipation(Section):
    kind: Literal["full"] = "full"

    def build(self, clients_per_round: int) -> federated.FullParticipation:
        return federated.FullParticipation()


Participation = Annotated[Union[UniformParticipation, PoissonParticipation, FullParticipation], Field(discriminator="kind")]


class LRScheduleConfig(Section):
    kind: Literal["constant", "step", "cosine"] = "constant"
    gamma: float = Field(0.5, gt=0, le=1, description="step: factor applied every step_size rounds")
    step_size: PositiveInt = Field(10, description="step: rounds between decays")
    min_factor: float = Field(0.0, ge=0, le=1, description="cosine: final lr as a fraction of the initial one")

    def build(self, rounds: int) -> federated.LRSchedule:
        return federated.LRSchedule(self.kind, self.gamma, self.step_size, self.min_factor, rounds)


class LocalWorkConfig(Section):
    unit: Literal["epochs", "steps"] = "epochs"
    values: list[PositiveInt] = Field(..., min_length=1, description="Possible local epochs/steps per client")
    probs: list[PositiveFloat] | None = Field(None, description="Their probabilities (uniform if omitted)")
    per_round: bool = Field(True, description="Redraw every round (stragglers) rather than once per client (hardware)")

    @model_validator(mode="after")
    def _same_length(self) -> "LocalWorkConfig":
        if self.probs is not None and len(self.probs) != len(self.values):
            raise PydanticCustomError(
                "fedsim", "algorithm.local_work.probs: {p} probabilities for {v} values (must match)", {"p": len(self.probs), "v": len(self.values)}
            )
        return self

    def build(self, seed: int) -> federated.LocalWork:
        return federated.LocalWork(self.unit, tuple(self.values), tuple(self.probs) if self.probs else None, self.per_round, seed)


class FedAvgConfig(Section):
    kind: Literal["fedavg"] = "fedavg"
    rounds: PositiveInt = 20
    clients_per_round: PositiveInt = 10
    local_epochs: PositiveInt = 1
    local_steps: PositiveInt | None = Field(None, description="Fixed local steps instead of epochs")
    batch_size: PositiveInt = 32
    lr: PositiveFloat = 0.05
    weight_decay: NonNegativeFloat = 0.0
    server_lr: PositiveFloat = 1.0
    weighting: Literal["samples", "uniform"] = "samples"
    participation: Participation = Field(default_factory=UniformParticipation)
    lr_schedule: LRScheduleConfig = Field(default_factory=LRScheduleConfig, description="Client lr schedule over rounds")
    server_lr_schedule: LRScheduleConfig = Field(default_factory=LRScheduleConfig)
    local_work: LocalWorkConfig | None = Field(None, description="Heterogeneous local work across clients")
    client_state_dir: str | None = Field(None, description="Spill per-client state to files in this folder")
    aggregator: AggregatorConfig = Field(default_factory=AggregatorConfig, description="Server aggregation rule (robust rules)")

    def local_sgd(self) -> LocalSGD:
        return LocalSGD(
            lr=self.lr, batch_size=self.batch_size, epochs=self.local_epochs, steps=self.local_steps, weight_decay=self.weight_decay
        )

    def fedavg_kwargs(self, ctx: BuildContext) -> dict[str, Any]:
        """Arguments every algorithm of the FedAvg family takes."""
        n = ctx.data.num_clients
        return dict(
            num_clients=n,
            clients_per_round=self.clients_per_round,
            task=ClientTask(self.local_sgd()),
            server_lr=self.server_lr,
            weighting=self.weighting,
            seed=ctx.seed,
            participation=self.participation.build(self.clients_per_round),
            client_lr_schedule=self.lr_schedule.build(self.rounds),
            server_lr_schedule=self.server_lr_schedule.build(self.rounds),
            local_work=self.local_work.build(ctx.seed) if self.local_work else None,
            client_states=ClientStateStore(self.client_state_dir, n) if self.client_state_dir else None,
            aggregator=self.aggregator.build() if self.aggregator.kind != "mean" else None,
            clock=ctx.systems.build(ctx.data, ctx.seed) if ctx.systems is not None else None,
        )

    def build(self, ctx: BuildContext) -> Algorithm:
        return FedAvg(**self.fedavg_kwargs(ctx))


class FedProxConfig(FedAvgConfig):
    kind: Literal["fedprox"] = "fedprox"  # type: ignore[assignment]  # a subclass narrows the kind tag
    mu: NonNegativeFloat = Field(0.01, description="Proximal weight mu (Li et al. 2020)")

    def build(self, ctx: BuildContext) -> Algorithm:
        return federated.FedProx(mu=self.mu, **self.fedavg_kwargs(ctx))


class FedAvgMConfig(FedAvgConfig):
    kind: Literal["fedavgm"] = "fedavgm"  # type: ignore[assignment]  # a subclass narrows the kind tag
    momentum: float = Field(0.9, ge=0, lt=1, description="Server momentum beta in [0, 1)")

    def build(self, ctx: BuildContext) -> Algorithm:
        return federated.FedAvgM(momentum=self.momentum, **self.fedavg_kwargs(ctx))


class FedAdamConfig(FedAvgConfig):
    kind: Literal["fedadam"] = "fedadam"  # type: ignore[assignment]  # a subclass narrows the kind tag
    server_lr: PositiveFloat = Field(0.01, description="Server step size eta (Reddi et al. 2021)")
    beta1: float = Field(0.9, ge=0, lt=1, description="First-moment decay in [0, 1)")
    beta2: float = Field(0.99, ge=0, lt=1, description="Second-moment decay in [0, 1)")
    tau: PositiveFloat = Field(1e-3, description="Adaptivity tau > 0")

    def build(self, ctx: BuildContext) -> Algorithm:
        return federated.FedAdam(beta1=self.beta1, beta2=self.beta2, tau=self.tau, **self.fedavg_kwargs(ctx))


class FedYogiConfig(FedAdamConfig):
    kind: Literal["fedyogi"] = "fedyogi"  # type: ignore[assignment]  # a subclass narrows the kind tag

    def build(self, ctx: BuildContext) -> Algorithm:
        return federated.FedYogi(beta1=self.beta1, beta2=self.beta2, tau=self.tau, **self.fedavg_kwargs(ctx))


class FedAdagradConfig(FedAdamConfig):
    kind: Literal["fedadagrad"] = "fedadagrad"  # type: ignore[assignment]  # a subclass narrows the kind tag
    beta1: float = Field(0.0, ge=0, lt=1, description="First-moment decay in [0, 1)")

    def build(self, ctx: BuildContext) -> Algorithm:
        return federated.FedAdagrad(beta1=self.beta1, tau=self.tau, **self.fedavg_kwargs(ctx))


class ScaffoldConfig(FedAvgConfig):
    kind: Literal["scaffold"] = "scaffold"  # type: ignore[assignment]  # a subclass narrows the kind tag

    def build(self, ctx: BuildContext) -> Algorithm:
        return federated.Scaffold(client_sizes=ctx.data.client_sizes(), **self.fedavg_kwargs(ctx))


class FedNovaConfig(FedAvgConfig):
    """FedNova (Wang et al. 2020): normalized averaging when clients do different local work."""

    kind: Literal["fednova"] = "fednova"  # type: ignore[assignment]  # a subclass narrows the kind tag

    def build(self, ctx: BuildContext) -> Algorithm:
        return federated.FedNova(**self.fedavg_kwargs(ctx))


class ParallelSGDConfig(Section):
    kind: Literal["parallel_sgd"] = "parallel_sgd"
    rounds: PositiveInt = 100
    participation: Participation = Field(default_factory=FullParticipation)
    clients_per_round: PositiveInt = Field(10, description="Used by uniform participation only")
    batch_size: PositiveInt = 32
    lr: PositiveFloat = 0.1
    weight_decay: NonNegativeFloat = 0.0
    weighting: Literal["samples", "uniform"] = "uniform"
    lr_schedule: LRScheduleConfig = Field(default_factory=LRScheduleConfig)

    def build(self, ctx: BuildContext) -> Algorithm:
        return federated.ParallelSGD(
            num_clients=ctx.data.num_clients,
            lr=self.lr,
            batch_size=self.batch_size,
            weight_decay=self.weight_decay,
            participation=self.participation.build(self.clients_per_round),
            weighting=self.weighting,
            lr_schedule=self.lr_schedule.build(self.rounds),
            seed=ctx.seed,
        )
