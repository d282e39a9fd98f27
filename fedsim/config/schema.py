"""The experiment schema. Every section forbids unknown keys; each algorithm, partition and runtime
is a model of its own, chosen by its ``kind``, and knows how to build its runtime object.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Literal, Union

from pydantic_core import PydanticCustomError
import torch
from pydantic import BaseModel, ConfigDict, Field, NonNegativeFloat, NonNegativeInt, PositiveFloat, PositiveInt, model_validator

from fedsim.algorithms import federated
from fedsim.algorithms.base import Algorithm
from fedsim.algorithms.dp_fed_ls import ClippedClientTask, DPFedLS, Smoothing
from fedsim.algorithms.dp_lssgd import DPLSSGD
from fedsim.algorithms.fedavg import FedAvg
from fedsim.client.local import LocalSGD
from fedsim.client.state import ClientStateStore
from fedsim.client.task import ClientTask
from fedsim.config.compression import CompressionConfig
from fedsim.config.robustness import AggregatorConfig, RobustnessConfig
from fedsim.config.decentralized import ChocoConfig, DPSGDConfig, GossipConfig, TopologySection
from fedsim.data.federated import FederatedData
from fedsim.errors import FedsimError
from fedsim.models.functional import FunctionalModel
from fedsim.privacy.accountant import PrivacyAccountant
from fedsim.privacy.calibration import calibrate_noise_multiplier
from fedsim.runtimes import Runtime, SerialRuntime, VectorizedRuntime, resolve_device

__all__ = ["ExperimentConfig"]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --------------------------------------------------------------------------- data


class IIDPartition(Section):
    kind: Literal["iid"] = "iid"


class DirichletPartition(Section):
    kind: Literal["dirichlet"] = "dirichlet"
    alpha: PositiveFloat = Field(0.5, description="Dirichlet concentration; small is skewed, large tends to IID")
    min_size: NonNegativeInt = Field(10, description="Resample until every client has at least this many samples")
    max_tries: PositiveInt = 100


class ShardPartition(Section):
    kind: Literal["shards"] = "shards"
    shards_per_client: PositiveInt = 2


Partition = Annotated[Union[IIDPartition, DirichletPartition, ShardPartition], Field(discriminator="kind")]


class DataConfig(Section):
    dataset: Literal["mnist"] = "mnist"
    num_clients: PositiveInt = 100
    partition: Partition = Field(default_factory=IIDPartition)

    def partition_params(self) -> dict[str, object]:
        return self.partition.model_dump(exclude={"kind"})


class ModelConfig(Section):
    kind: Literal["logistic", "mlp", "cnn"] = "mlp"
    hidden: list[PositiveInt] = Field(default_factory=lambda: [200], description="MLP hidden widths")
    channels: tuple[PositiveInt, PositiveInt] = Field((6, 16), description="CNN conv channels")


# --------------------------------------------------------------------------- algorithms


class BuildContext:
    """What an algorithm builder may use: the seed, the federation and the topology section."""

    def __init__(self, *, seed: int, data: FederatedData, topology: TopologySection | None = None,
                 privacy: "PrivacyConfig | None" = None) -> None:
        self.seed = seed
        self.data = data
        self.topology = topology if topology is not None else TopologySection()
        self.privacy = privacy


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

    def fedavg_kwargs(self, ctx: BuildContext) -> dict[str, object]:
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
        )

    def build(self, ctx: BuildContext) -> Algorithm:
        return FedAvg(**self.fedavg_kwargs(ctx))


class FedProxConfig(FedAvgConfig):
    kind: Literal["fedprox"] = "fedprox"  # type: ignore[assignment]
    mu: NonNegativeFloat = Field(0.01, description="Proximal weight mu (Li et al. 2020)")

    def build(self, ctx: BuildContext) -> Algorithm:
        return federated.FedProx(mu=self.mu, **self.fedavg_kwargs(ctx))


class FedAvgMConfig(FedAvgConfig):
    kind: Literal["fedavgm"] = "fedavgm"  # type: ignore[assignment]
    momentum: float = Field(0.9, ge=0, lt=1, description="Server momentum beta in [0, 1)")

    def build(self, ctx: BuildContext) -> Algorithm:
        return federated.FedAvgM(momentum=self.momentum, **self.fedavg_kwargs(ctx))


class FedAdamConfig(FedAvgConfig):
    kind: Literal["fedadam"] = "fedadam"  # type: ignore[assignment]
    server_lr: PositiveFloat = Field(0.01, description="Server step size eta (Reddi et al. 2021)")
    beta1: float = Field(0.9, ge=0, lt=1, description="First-moment decay in [0, 1)")
    beta2: float = Field(0.99, ge=0, lt=1, description="Second-moment decay in [0, 1)")
    tau: PositiveFloat = Field(1e-3, description="Adaptivity tau > 0")

    def build(self, ctx: BuildContext) -> Algorithm:
        return federated.FedAdam(beta1=self.beta1, beta2=self.beta2, tau=self.tau, **self.fedavg_kwargs(ctx))


class FedYogiConfig(FedAdamConfig):
    kind: Literal["fedyogi"] = "fedyogi"  # type: ignore[assignment]

    def build(self, ctx: BuildContext) -> Algorithm:
        return federated.FedYogi(beta1=self.beta1, beta2=self.beta2, tau=self.tau, **self.fedavg_kwargs(ctx))


class FedAdagradConfig(FedAdamConfig):
    kind: Literal["fedadagrad"] = "fedadagrad"  # type: ignore[assignment]
    beta1: float = Field(0.0, ge=0, lt=1, description="First-moment decay in [0, 1)")

    def build(self, ctx: BuildContext) -> Algorithm:
        return federated.FedAdagrad(beta1=self.beta1, tau=self.tau, **self.fedavg_kwargs(ctx))


class ScaffoldConfig(FedAvgConfig):
    kind: Literal["scaffold"] = "scaffold"  # type: ignore[assignment]

    def build(self, ctx: BuildContext) -> Algorithm:
        return federated.Scaffold(**self.fedavg_kwargs(ctx))


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


# --------------------------------------------------------------------------- privacy


class PrivacyConfig(Section):
    """The ``privacy:`` section, read by the private algorithms (dp_fed_ls, dp_lssgd)."""

    noise_multiplier: NonNegativeFloat | None = Field(None, description="z: noise std on the sum / clip_norm")
    target_epsilon: PositiveFloat | None = Field(None, description="Calibrate z before the run so the planned rounds spend this epsilon")
    delta: float | None = Field(None, gt=0, lt=1, description="Target delta; default 1/N^1.1, N the privacy units (clients for dp_fed_ls, examples for dp_lssgd)")
    clip_norm: PositiveFloat = Field(1.0, description="G: l2 bound on each client's update")
    clip_mode: Literal["end_of_round", "every_step"] = "end_of_round"
    budget: PositiveFloat | None = Field(None, description="Stop before the round whose epsilon would exceed this")
    accountant: Literal["rdp", "prv"] = "rdp"
    denominator: Literal["expected", "realized"] = Field("expected", description="Poisson sampling: divide by the expected or the realized cohort size")

    @model_validator(mode="after")
    def _one_noise_source(self) -> "PrivacyConfig":
        if (self.noise_multiplier is None) == (self.target_epsilon is None):
            raise PydanticCustomError("fedsim", "privacy: set exactly one of noise_multiplier and target_epsilon", {})
        return self

    def resolve_delta(self, units: int) -> float:
        return self.delta if self.delta is not None else units ** -1.1

    def resolve_noise(self, *, sample_rate: float, steps: int, delta: float, sampling: str = "poisson",
                      population: int | None = None) -> float:
        # Calibrated with the analysis the ledger will use (same sampling scheme and adjacency).
        if self.noise_multiplier is not None:
            return self.noise_multiplier
        return calibrate_noise_multiplier(target_epsilon=self.target_epsilon, delta=delta, sample_rate=sample_rate,
                                          steps=steps, accountant=self.accountant, sampling=sampling,
                                          population=population)


class DPFedLSConfig(FedAvgConfig):
    """DP-Fed-LS / DP-FedAvg (ls_sigma = 0); noise, clip and accounting come from ``privacy:``."""

    kind: Literal["dp_fed_ls"] = "dp_fed_ls"  # type: ignore[assignment]
    weighting: Literal["uniform"] = "uniform"
    ls_sigma: NonNegativeFloat = Field(0.0, description="Laplacian smoothing strength; 0 is DP-FedAvg")
    ls_order: PositiveInt = 1
    ls_mode: Literal["per_tensor", "global_flat"] = "per_tensor"

    def build(self, ctx: BuildContext) -> Algorithm:
        priv = ctx.privacy
        if priv is None:
            raise FedsimError("privacy: section required by algorithm.kind=dp_fed_ls (noise_multiplier or target_epsilon)")
        kwargs = self.fedavg_kwargs(ctx)
        k = ctx.data.num_clients
        q = kwargs["participation"].expected_size(k) / k
        delta = priv.resolve_delta(k)
        sampling = self.participation.kind
        z = priv.resolve_noise(sample_rate=q, steps=self.rounds, delta=delta, sampling=sampling, population=k)
        local = replace(self.local_sgd(), clip_radius=priv.clip_norm if priv.clip_mode == "every_step" else None)
        kwargs.update(task=ClippedClientTask(local, clip_norm=priv.clip_norm), weighting="uniform")
        accountant = PrivacyAccountant(delta=delta, accountant=priv.accountant, sampling=sampling, unit="user", population=k)
        return DPFedLS(noise_multiplier=z, accountant=accountant, smoothing=Smoothing(self.ls_sigma, self.ls_order, self.ls_mode),
                       denominator=priv.denominator, budget=priv.budget, **kwargs)


class DPLSSGDConfig(Section):
    """DP-LSSGD / DP-SGD (ls_sigma = 0), sample-level; noise, clip and accounting come from ``privacy:``."""

    kind: Literal["dp_lssgd"] = "dp_lssgd"
    rounds: PositiveInt = 100
    batch_size: PositiveInt = Field(128, description="Expected lot size; each example joins a round with q = batch_size / n")
    sampling: Literal["poisson", "uniform"] = Field("poisson", description="poisson lots (rate q) or fixed-size lots of batch_size without replacement (replace-one accounting)")
    lr: PositiveFloat = 0.1
    lr_decay: Literal["constant", "inverse"] = Field("constant", description="inverse: lr / t, the slides' step size 1/t")
    weight_decay: NonNegativeFloat = 0.0
    ls_sigma: NonNegativeFloat = Field(0.0, description="Laplacian smoothing strength; 0 is DP-SGD")
    ls_order: PositiveInt = 1
    ls_mode: Literal["per_tensor", "global_flat"] = "per_tensor"

    def build(self, ctx: BuildContext) -> Algorithm:
        priv = ctx.privacy
        if priv is None:
            raise FedsimError("privacy: section required by algorithm.kind=dp_lssgd (noise_multiplier or target_epsilon)")
        n = int(ctx.data.client_sizes().sum())
        if self.batch_size > n:
            raise FedsimError(f"algorithm.batch_size: {self.batch_size} exceeds the {n} training examples")
        q = self.batch_size / n
        delta = priv.resolve_delta(n)
        z = priv.resolve_noise(sample_rate=q, steps=self.rounds, delta=delta, sampling=self.sampling, population=n)
        accountant = PrivacyAccountant(delta=delta, accountant=priv.accountant, sampling=self.sampling, unit="sample",
                                       population=n)
        return DPLSSGD(lr=self.lr, sample_rate=q, noise_multiplier=z, clip_norm=priv.clip_norm, accountant=accountant,
                       num_samples=n, smoothing=Smoothing(self.ls_sigma, self.ls_order, self.ls_mode),
                       weight_decay=self.weight_decay, lr_decay=self.lr_decay, budget=priv.budget, seed=ctx.seed,
                       sampling=self.sampling)


AlgorithmSection = Annotated[
    Union[
        FedAvgConfig, ParallelSGDConfig, FedProxConfig, FedAvgMConfig, FedAdagradConfig, FedAdamConfig, FedYogiConfig, ScaffoldConfig,
        GossipConfig, DPSGDConfig, ChocoConfig,
        DPFedLSConfig, DPLSSGDConfig,
    ],
    Field(discriminator="kind"),
]


# --------------------------------------------------------------------------- runtime, evaluation, output


class SerialRuntimeConfig(Section):
    kind: Literal["serial"] = "serial"
    device: str = Field("auto", pattern=r"^(auto|cpu|cuda(:\d+)?)$", description="auto, cpu, cuda or cuda:N")
    threads: PositiveInt | None = Field(
        1,
        description="torch intra-op threads (null: torch's default). One client's minibatch steps are too small to "
        "split across cores; a thread pool then only spins, and slows a shared machine many-fold",
    )

    def build(self, model: FunctionalModel, data: FederatedData, seed: int) -> Runtime:
        if self.threads is not None:
            torch.set_num_threads(self.threads)
        return SerialRuntime(model, data, seed=seed, device=resolve_device(self.device))


class VectorizedRuntimeConfig(Section):
    kind: Literal["vectorized"] = "vectorized"
    device: str = Field("auto", pattern=r"^(auto|cpu|cuda(:\d+)?)$", description="auto, cpu, cuda or cuda:N")
    max_clients: PositiveInt = Field(256, description="Clients trained in one batched pass (bounds activation memory)")

    def build(self, model: FunctionalModel, data: FederatedData, seed: int) -> Runtime:
        return VectorizedRuntime(model, data, seed=seed, device=resolve_device(self.device), max_clients=self.max_clients)


class RayRuntimeConfig(Section):
    kind: Literal["ray"] = "ray"
    address: str | None = Field(None, description="None starts Ray locally; 'auto' joins `ray start`; 'ray://host:10001' via Ray Client")
    num_actors: PositiveInt | None = Field(None, description="Actors to start (default: one per CPU in the cluster)")
    device: str = Field("auto", pattern=r"^(auto|cpu|cuda)$", description="auto (fractional GPUs when the cluster has them), cpu or cuda")
    max_clients: PositiveInt = Field(256, description="Clients per batched pass inside an actor")

    def build(self, model: FunctionalModel, data: FederatedData, seed: int) -> Runtime:
        from fedsim.runtimes.ray_runtime import RayRuntime

        return RayRuntime(
            model, data, seed=seed, address=self.address, num_actors=self.num_actors, device=self.device, max_clients=self.max_clients
        )


RuntimeSection = Annotated[Union[SerialRuntimeConfig, VectorizedRuntimeConfig, RayRuntimeConfig], Field(discriminator="kind")]


class EvaluationConfig(Section):
    every: PositiveInt = Field(1, description="Evaluate on the test set every this many rounds (and after the last)")
    client_holdout: float = Field(
        0.0, ge=0, lt=1, description="Hold out this fraction of each client's data and report mean, 10th percentile and worst client accuracy"
    )


class OutputConfig(Section):
    dir: str = Field("runs/run", description="Run folder; a numeric suffix is added if it already holds a run")
    plot: bool = True
    checkpoint_every: PositiveInt | None = Field(None, description="Save a resumable checkpoint every this many rounds (and after the last)")


class FlowerConfig(Section):
    """How a run behaves under Flower (``fedsim flower deploy``); the simulator ignores it."""

    min_nodes: PositiveInt = Field(1, description="Fewest live SuperNodes a round may run with")
    node_wait_s: PositiveFloat = Field(60.0, description="Wait this long for SuperNodes (all at start, min_nodes later) before failing")
    round_timeout_s: PositiveFloat = Field(120.0, description="A SuperNode that has not answered a round by then is dropped")


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
    robustness: RobustnessConfig | None = None

    @model_validator(mode="after")
    def _robust_aggregation_keeps_privacy(self) -> "ExperimentConfig":
        # DP-Fed-LS calibrates its noise to the sensitivity of the sum of clipped updates; a robust
        # rule has another sensitivity, so the reported epsilon would not hold.
        kind = getattr(getattr(self.algorithm, "aggregator", None), "kind", "mean")
        if kind != "mean" and self.privacy is not None:
            raise PydanticCustomError("fedsim", "algorithm.aggregator: '{kind}' with privacy: the DP noise is calibrated to the "
                                      "mean's sensitivity (allowed with privacy: mean)", {"kind": kind})
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
