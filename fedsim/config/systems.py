"""The ``systems:`` section: device speeds and links, availability, and the synchronous deadline.

Its ``build()`` makes the :class:`~fedsim.algorithms.simulated_clock.SimulatedClock` that the
FedAvg family and the asynchronous rules (``fedbuff``, ``fedasync``) run on.
"""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import Field, NonNegativeFloat, PositiveFloat, PositiveInt

from fedsim.algorithms.simulated_clock import SimulatedClock
from fedsim.config.base import Section
from fedsim.data.federated import FederatedData
from fedsim.systems import (
    NAMED_PROFILES,
    AlwaysAvailable,
    Availability,
    ClientProfiles,
    DiurnalAvailability,
    TraceAvailability,
    lognormal_profiles,
    read_profile_trace,
)

__all__ = ["SystemsConfig"]


class LognormalDevices(Section):
    """Log-normal speeds and links: medians and the sigmas of their logarithms."""

    kind: Literal["lognormal"] = "lognormal"
    speed: PositiveFloat = Field(200.0, description="Median training throughput, samples per second")
    speed_sigma: NonNegativeFloat = Field(0.8, description="Std of log(speed)")
    uplink: PositiveFloat = Field(1.0e6, description="Median uplink, bytes per second")
    uplink_sigma: NonNegativeFloat = 1.0
    downlink: PositiveFloat = Field(5.0e6, description="Median downlink, bytes per second")
    downlink_sigma: NonNegativeFloat = 1.0
    latency: NonNegativeFloat = Field(0.1, description="Fixed seconds per task")

    def build(self, num_clients: int, seed: int) -> ClientProfiles:
        return lognormal_profiles(num_clients, seed=seed, **self.model_dump(exclude={"kind"}))


class NamedDevices(Section):
    """A named device population (:data:`fedsim.systems.NAMED_PROFILES`)."""

    kind: Literal["named"] = "named"
    name: Literal["mobile", "cross_silo", "uniform"] = "mobile"

    def build(self, num_clients: int, seed: int) -> ClientProfiles:
        return lognormal_profiles(num_clients, seed=seed, **NAMED_PROFILES[self.name])


class TraceDevices(Section):
    """Per-client values from a CSV ``client,speed,up,down[,latency]`` listing every client."""

    kind: Literal["trace"] = "trace"
    path: str

    def build(self, num_clients: int, seed: int) -> ClientProfiles:
        return read_profile_trace(self.path, num_clients)


Devices = Annotated[Union[LognormalDevices, NamedDevices, TraceDevices], Field(discriminator="kind")]


class AlwaysOnline(Section):
    kind: Literal["always"] = "always"

    def build(self, num_clients: int, seed: int) -> Availability:
        return AlwaysAvailable()


class DiurnalOnline(Section):
    """Online ``online_fraction`` of every ``period_s``, at a random phase per client."""

    kind: Literal["diurnal"] = "diurnal"
    period_s: PositiveFloat = 86400.0
    online_fraction: float = Field(0.5, gt=0, le=1)

    def build(self, num_clients: int, seed: int) -> Availability:
        return DiurnalAvailability(num_clients, self.period_s, self.online_fraction, seed)


class TraceOnline(Section):
    """Online intervals from a CSV ``client,start,end`` (seconds); a client without rows is never online."""

    kind: Literal["trace"] = "trace"
    path: str

    def build(self, num_clients: int, seed: int) -> Availability:
        return TraceAvailability.from_csv(self.path, num_clients)


Online = Annotated[Union[AlwaysOnline, DiurnalOnline, TraceOnline], Field(discriminator="kind")]


class SystemsConfig(Section):
    """Simulated time: device profiles, availability and the synchronous rounds' deadline."""

    devices: Devices = Field(default_factory=LognormalDevices)
    availability: Online = Field(default_factory=AlwaysOnline)
    deadline_s: PositiveFloat | None = Field(None, description="Synchronous rounds drop reports later than this")
    wait_for: PositiveInt | None = Field(None, description="Synchronous rounds keep the first m reports (over-selection)")
    partial_work: bool = Field(False, description="Late clients send the local steps that fit before the deadline")

    def build(self, data: FederatedData, seed: int) -> SimulatedClock:
        k = data.num_clients
        return SimulatedClock(profiles=self.devices.build(k, seed), client_sizes=data.client_sizes(),
                              availability=self.availability.build(k, seed), deadline_s=self.deadline_s,
                              wait_for=self.wait_for, partial_work=self.partial_work)
