"""The ``data:`` section: dataset, client count and partition (one model per partition ``kind``).

A new dataset is a new ``dataset`` literal here (and its loader in :mod:`fedsim.data`); a new
partition is a new ``*Partition`` model added to :data:`Partition`.
"""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import Field, NonNegativeInt, PositiveFloat, PositiveInt

from fedsim.config.base import Section

__all__ = ["DataConfig", "DirichletPartition", "IIDPartition", "Partition", "ShardPartition"]


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
