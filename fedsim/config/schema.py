"""The experiment schema. Every section forbids unknown keys; each algorithm, partition and runtime
is a model of its own, chosen by its ``kind``, and knows how to build its runtime object.
"""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic_core import PydanticCustomError
from pydantic import BaseModel, ConfigDict, Field, NonNegativeFloat, NonNegativeInt, PositiveFloat, PositiveInt, model_validator

from fedsim.algorithms.base import Algorithm
from fedsim.algorithms.fedavg import FedAvg
from fedsim.client.local import LocalSGD
from fedsim.client.task import ClientTask
from fedsim.data.federated import FederatedData
from fedsim.models.functional import FunctionalModel
from fedsim.runtimes import Runtime, SerialRuntime, resolve_device

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
    """What an algorithm builder may use: the seed and the federation."""

    def __init__(self, *, seed: int, data: FederatedData) -> None:
        self.seed = seed
        self.data = data


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

    def local_sgd(self) -> LocalSGD:
        return LocalSGD(
            lr=self.lr, batch_size=self.batch_size, epochs=self.local_epochs, steps=self.local_steps, weight_decay=self.weight_decay
        )

    def build(self, ctx: BuildContext) -> Algorithm:
        return FedAvg(
            num_clients=ctx.data.num_clients,
            clients_per_round=self.clients_per_round,
            task=ClientTask(self.local_sgd()),
            server_lr=self.server_lr,
            weighting=self.weighting,
            seed=ctx.seed,
        )


AlgorithmSection = Annotated[Union[FedAvgConfig], Field(discriminator="kind")]


# --------------------------------------------------------------------------- runtime, evaluation, output


class SerialRuntimeConfig(Section):
    kind: Literal["serial"] = "serial"
    device: str = Field("auto", pattern=r"^(auto|cpu|cuda(:\d+)?)$", description="auto, cpu, cuda or cuda:N")

    def build(self, model: FunctionalModel, data: FederatedData, seed: int) -> Runtime:
        return SerialRuntime(model, data, seed=seed, device=resolve_device(self.device))


RuntimeSection = Annotated[Union[SerialRuntimeConfig], Field(discriminator="kind")]


class EvaluationConfig(Section):
    every: PositiveInt = Field(1, description="Evaluate on the test set every this many rounds (and after the last)")


class OutputConfig(Section):
    dir: str = Field("runs/run", description="Run folder; a numeric suffix is added if it already holds a run")
    plot: bool = True


class ExperimentConfig(Section):
    """A whole experiment. See README.md for the reference of every key."""

    seed: NonNegativeInt = 0
    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    algorithm: AlgorithmSection = Field(default_factory=FedAvgConfig)
    runtime: RuntimeSection = Field(default_factory=SerialRuntimeConfig)
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig)
    output: OutputConfig = Field(default_factory=OutputConfig)

    @model_validator(mode="after")
    def _cohort_fits(self) -> "ExperimentConfig":
        per_round = getattr(self.algorithm, "clients_per_round", None)
        if per_round is not None and per_round > self.data.num_clients:
            raise PydanticCustomError(
                "fedsim",
                "algorithm.clients_per_round: {got} exceeds data.num_clients={n} (allowed: 1..{n})",
                {"got": per_round, "n": self.data.num_clients},
            )
        return self
