"""The ``data:`` section: data set, client count, partition (one model per partition ``kind``),
the Synthetic(alpha, beta) and custom-file settings, and train-time augmentation.

A new dataset is a new ``dataset`` literal here (and its loader in :mod:`fedsim.data.datasets`);
a new partition is a new ``*Partition`` model added to :data:`Partition`.
"""

from __future__ import annotations

from dataclasses import replace
from collections.abc import Callable, Sequence
from typing import Annotated, Any, Literal, Union

from pydantic import Field, NonNegativeFloat, NonNegativeInt, PositiveFloat, PositiveInt

from fedsim.config.base import Section
from fedsim.data.augment import Augmentation
from fedsim.data.datasets import Dataset
from fedsim.data.federated import FederatedData, build_federated_data
from fedsim.errors import FedsimError

__all__ = [
    "AugmentConfig",
    "DataConfig",
    "DirichletPartition",
    "DirichletQuantityPartition",
    "IIDPartition",
    "NaturalPartition",
    "Partition",
    "PathologicalPartition",
    "QuantitySkewPartition",
    "ShardPartition",
    "SyntheticConfig",
]


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


class PathologicalPartition(Section):
    kind: Literal["pathological"] = "pathological"
    classes_per_client: PositiveInt = Field(2, description="Exactly this many classes per client (NIID-Bench's #C=c)")


SizeLaw = Literal["lognormal", "power"]


class QuantitySkewPartition(Section):
    kind: Literal["quantity_skew"] = "quantity_skew"
    law: SizeLaw = Field("lognormal", description="Client size law: lognormal exp(N(0, sigma^2)) or power (Pareto tail exponent)")
    sigma: PositiveFloat = Field(1.0, description="lognormal: std of log size")
    exponent: PositiveFloat = Field(1.5, description="power: Pareto tail exponent a (P(size > s) ~ s^-a)")
    min_size: PositiveInt = Field(1, description="Every client gets at least this many samples")


class DirichletQuantityPartition(QuantitySkewPartition):
    kind: Literal["dirichlet_quantity"] = "dirichlet_quantity"  # type: ignore[assignment]  # a subclass narrows the kind tag
    alpha: PositiveFloat = Field(0.5, description="Label skew: Dirichlet concentration per unit size share")
    max_tries: PositiveInt = 100


class NaturalPartition(Section):
    kind: Literal["natural"] = "natural"
    max_clients: PositiveInt | None = Field(None, description="Sub-sample this many of the data set's natural clients (default all)")


Partition = Annotated[
    Union[IIDPartition, DirichletPartition, ShardPartition, PathologicalPartition, QuantitySkewPartition,
          DirichletQuantityPartition, NaturalPartition],
    Field(discriminator="kind"),
]


class SyntheticConfig(Section):
    """Synthetic(alpha, beta) of Li et al. 2020 (FedProx); read when ``data.dataset: synthetic``."""

    alpha: NonNegativeFloat = Field(1.0, description="Std of the per-device model mean u_k (model heterogeneity)")
    beta: NonNegativeFloat = Field(1.0, description="Std of the per-device feature mean B_k (feature heterogeneity)")
    num_devices: PositiveInt = Field(30, description="Devices generated (the natural clients); the paper uses 30")
    dim: PositiveInt = 60
    num_classes: int = Field(10, ge=2)
    max_samples: PositiveInt | None = Field(None, description="Cap on a device's lognormal(4, 2) + 50 samples")
    iid: bool = Field(False, description="Synthetic-IID: one W, b ~ N(0, 1) and x ~ N(0, Sigma) for all devices")


class AugmentConfig(Section):
    """Train-time augmentation of image minibatches, on the device, seeded per (seed, client, round)."""

    crop_padding: NonNegativeInt = Field(4, description="Random crop of the image zero-padded by this many pixels (0: off)")
    flip: bool = Field(False, description="Random horizontal flip with probability 1/2 (CIFAR)")


class DataConfig(Section):
    dataset: Literal["mnist", "fashion_mnist", "femnist", "shakespeare", "cifar10", "cifar100", "synthetic", "custom"] = "mnist"
    num_clients: PositiveInt = Field(100, description="Clients to split into (unused by partition.kind=natural)")
    partition: Partition = Field(default_factory=IIDPartition)
    path: str | None = Field(None, description="custom: a .npz or .pt file with x, y and optionally client_id, x_test, y_test")
    test_fraction: float = Field(0.2, gt=0, lt=1, description="custom without x_test: held-out fraction for the test set")
    synthetic: SyntheticConfig = Field(default_factory=SyntheticConfig)
    augment: AugmentConfig | None = Field(None, description="Train-time augmentation for image data sets (null: none)")

    def partition_params(self) -> dict[str, object]:
        return self.partition.model_dump(exclude={"kind"})

    def dataset_params(self) -> dict[str, object]:
        """Keyword arguments of :func:`fedsim.data.datasets.load_dataset` for this section."""
        if self.dataset == "synthetic":
            return {"synthetic": self.synthetic.model_dump()}
        if self.dataset == "custom":
            return {"path": self.path, "test_fraction": self.test_fraction}
        return {}

    def build(self, seed: int, partition: Sequence[Sequence[int]] | Callable[..., Any] | None = None,
              dataset: Dataset | None = None) -> FederatedData:
        """The federated data set: loaded, partitioned (``partition`` replaces the configured one),
        with the configured augmentation attached (an image data set only)."""
        data = build_federated_data(
            dataset=dataset if dataset is not None else self.dataset,
            dataset_params=self.dataset_params(),
            num_clients=self.num_clients,
            partition=partition if partition is not None else self.partition.kind,
            partition_params=None if partition is not None else self.partition_params(),
            seed=seed,
        )
        if self.augment is None:
            return data
        if data.kind != "image":
            raise FedsimError(f"data.augment: crops and flips need an image data set, not data.dataset={data.name} ({data.kind})")
        return replace(data, augment=Augmentation(data.input_shape, self.augment.crop_padding, self.augment.flip))  # type: ignore[arg-type]  # an image's input_shape is (C, H, W)
