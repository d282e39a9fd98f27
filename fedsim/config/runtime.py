"""The ``runtime:`` section (serial, vectorized or Ray; one model per ``kind``) and the ``flower:``
section read when a run is deployed on Flower SuperNodes.
"""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import Field, PositiveFloat, PositiveInt

from fedsim.config.base import Section
from fedsim.data.federated import FederatedData
from fedsim.models.functional import FunctionalModel
from fedsim.runtimes import Runtime, SerialRuntime, VectorizedRuntime, resolve_device

__all__ = ["FlowerConfig", "RayRuntimeConfig", "RuntimeSection", "SerialRuntimeConfig", "VectorizedRuntimeConfig"]


class SerialRuntimeConfig(Section):
    kind: Literal["serial"] = "serial"
    device: str = Field("auto", pattern=r"^(auto|cpu|cuda(:\d+)?)$", description="auto, cpu, cuda or cuda:N")
    threads: PositiveInt | None = Field(
        1,
        description="torch intra-op threads (null: torch's default). One client's minibatch steps are too small to "
        "split across cores; a thread pool then only spins, and slows a shared machine many-fold",
    )

    def build(self, model: FunctionalModel, data: FederatedData, seed: int) -> Runtime:
        return SerialRuntime(model, data, seed=seed, device=resolve_device(self.device), threads=self.threads)


class VectorizedRuntimeConfig(Section):
    kind: Literal["vectorized"] = "vectorized"
    device: str = Field("auto", pattern=r"^(auto|cpu|cuda(:\d+)?)$", description="auto, cpu, cuda or cuda:N")
    max_clients: PositiveInt = Field(256, description="Clients trained in one batched pass (bounds activation memory)")
    conv: Literal["auto", "vmap", "unfold", "per_client"] = Field(
        "auto",
        description="Models with convolutions: vmap (grouped convolution), unfold (im2col + batched matmul), per_client "
        "(client by client), auto (per_client on CPU, where batching measured slower, vmap on CUDA)",
    )
    threads: PositiveInt | None = Field(None, description="torch intra-op threads (null: torch's default); batched passes are large enough to use them")

    def build(self, model: FunctionalModel, data: FederatedData, seed: int) -> Runtime:
        return VectorizedRuntime(
            model, data, seed=seed, device=resolve_device(self.device), max_clients=self.max_clients, conv=self.conv,
            threads=self.threads,
        )


class RayRuntimeConfig(Section):
    kind: Literal["ray"] = "ray"
    address: str | None = Field(None, description="None starts Ray locally; 'auto' joins `ray start`; 'ray://host:10001' via Ray Client")
    num_actors: PositiveInt | None = Field(None, description="Actors to start (default: one per CPU in the cluster)")
    device: str = Field("auto", pattern=r"^(auto|cpu|cuda)$", description="auto (fractional GPUs when the cluster has them), cpu or cuda")
    max_clients: PositiveInt = Field(256, description="Clients per batched pass inside an actor")
    threads: PositiveInt | None = Field(None, description="torch intra-op threads in each actor (null: the actor's share of CPUs)")
    conv: Literal["auto", "vmap", "unfold", "per_client"] = Field(
        "auto",
        description="Models with convolutions or a recurrence, inside each actor as in the vectorized runtime: auto trains "
        "client by client on a CPU actor (faster there) and batched (vmap) on a GPU actor",
    )

    def build(self, model: FunctionalModel, data: FederatedData, seed: int) -> Runtime:
        from fedsim.runtimes.ray_runtime import RayRuntime

        return RayRuntime(
            model, data, seed=seed, address=self.address, num_actors=self.num_actors, device=self.device, max_clients=self.max_clients,
            threads=self.threads, conv=self.conv,
        )


RuntimeSection = Annotated[Union[SerialRuntimeConfig, VectorizedRuntimeConfig, RayRuntimeConfig], Field(discriminator="kind")]


class FlowerConfig(Section):
    """How a run behaves under Flower (``fedsim flower deploy``); the simulator ignores it."""

    min_nodes: PositiveInt = Field(1, description="Fewest live SuperNodes a round may run with")
    node_wait_s: PositiveFloat = Field(60.0, description="Wait this long for SuperNodes (all at start, min_nodes later) before failing")
    round_timeout_s: PositiveFloat = Field(120.0, description="A SuperNode that has not answered a round by then is dropped")
