"""The asynchronous rules' sections, ``fedbuff`` and ``fedasync``: the FedAvg family's keys plus
buffering, mixing and staleness. ``clients_per_round`` is their concurrency (clients training at
any time) and ``rounds`` their number of server steps; both need a ``systems:`` section.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import Field, PositiveFloat, PositiveInt, model_validator
from pydantic_core import PydanticCustomError

from fedsim.algorithms import federated
from fedsim.algorithms.asynchronous import FedAsync, FedBuff
from fedsim.algorithms.base import Algorithm
from fedsim.algorithms.fedavg import FedAvg
from fedsim.algorithms.simulated_clock import SimulatedClock
from fedsim.config.base import BuildContext, Section
from fedsim.config.federated import FedAvgConfig
from fedsim.errors import FedsimError
from fedsim.systems.staleness import STALENESS_RULES, hinge_staleness, polynomial_staleness

__all__ = ["FedAsyncConfig", "FedBuffConfig"]


class PlainServer(Section):
    kind: Literal["sgd"] = "sgd"

    def build(self, kwargs: dict[str, Any]) -> FedAvg:
        return FedAvg(**kwargs)


class MomentumServer(Section):
    kind: Literal["momentum"] = "momentum"
    momentum: float = Field(0.9, ge=0, lt=1)

    def build(self, kwargs: dict[str, Any]) -> FedAvg:
        return federated.FedAvgM(momentum=self.momentum, **kwargs)


class AdaptiveServer(Section):
    kind: Literal["adam", "yogi", "adagrad"]
    beta1: float = Field(0.9, ge=0, lt=1)
    beta2: float = Field(0.99, ge=0, lt=1)
    tau: PositiveFloat = 1e-3

    def build(self, kwargs: dict[str, Any]) -> FedAvg:
        if self.kind == "adagrad":
            return federated.FedAdagrad(beta1=self.beta1, tau=self.tau, **kwargs)
        cls = federated.FedAdam if self.kind == "adam" else federated.FedYogi
        return cls(beta1=self.beta1, beta2=self.beta2, tau=self.tau, **kwargs)


ServerOptimizer = Annotated[Union[PlainServer, MomentumServer, AdaptiveServer], Field(discriminator="kind")]


class _AsyncConfig(FedAvgConfig):
    staleness: Literal["constant", "polynomial", "hinge", "sqrt"] = "sqrt"
    staleness_a: PositiveFloat = Field(0.5, description="polynomial: exponent a; hinge: slope a")
    staleness_b: float = Field(4.0, ge=0, description="hinge: staleness up to b is not discounted")

    def staleness_rule(self):
        if self.staleness == "polynomial":
            return lambda s: polynomial_staleness(s, self.staleness_a)
        if self.staleness == "hinge":
            return lambda s: hinge_staleness(s, self.staleness_a, self.staleness_b)
        return STALENESS_RULES[self.staleness]

    def server_and_clock(self, ctx: BuildContext, server: ServerOptimizer) -> tuple[FedAvg, SimulatedClock]:
        if ctx.systems is None:
            raise FedsimError(f"algorithm.kind={self.kind}: needs a systems: section (device speeds and links set the arrival order)")
        kwargs = self.fedavg_kwargs(ctx)
        clock = kwargs.pop("clock")
        return server.build(kwargs), clock


class FedBuffConfig(_AsyncConfig):
    """FedBuff (Nguyen et al. 2022): ``clients_per_round`` clients in flight, a server step per ``buffer_size`` arrivals."""

    kind: Literal["fedbuff"] = "fedbuff"  # type: ignore[assignment]  # a subclass narrows the kind tag
    buffer_size: PositiveInt | None = Field(None, description="Arrivals per server step, K <= clients_per_round "
                                                                "(default: half the clients in flight)")
    server: ServerOptimizer = Field(default_factory=PlainServer, description="The server stage: sgd, momentum, adam, yogi, adagrad")

    @model_validator(mode="after")
    def _buffer_fits(self) -> "FedBuffConfig":
        if self.buffer_size is not None and self.buffer_size > self.clients_per_round:
            raise PydanticCustomError("fedsim", "algorithm.buffer_size: {k} exceeds clients_per_round={m}, the clients in flight "
                                      "(allowed: 1..{m})", {"k": self.buffer_size, "m": self.clients_per_round})
        return self

    def build(self, ctx: BuildContext) -> Algorithm:
        server, clock = self.server_and_clock(ctx, self.server)
        buffer = self.buffer_size if self.buffer_size is not None else max(1, self.clients_per_round // 2)
        return FedBuff(server=server, clock=clock, concurrency=self.clients_per_round, buffer_size=buffer,
                       staleness=self.staleness_rule())


class FedAsyncConfig(_AsyncConfig):
    """FedAsync (Xie et al. 2019): every arrival mixed in with weight ``alpha * S(staleness)``."""

    kind: Literal["fedasync"] = "fedasync"  # type: ignore[assignment]  # a subclass narrows the kind tag
    staleness: Literal["constant", "polynomial", "hinge", "sqrt"] = "polynomial"
    alpha: float = Field(0.6, gt=0, le=1, description="Mixing weight alpha in (0, 1]")

    def build(self, ctx: BuildContext) -> Algorithm:
        server, clock = self.server_and_clock(ctx, PlainServer())
        return FedAsync(alpha=self.alpha, server=server, clock=clock, concurrency=self.clients_per_round,
                        staleness=self.staleness_rule())
