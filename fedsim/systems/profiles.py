"""Per-client compute speed and network links, and the time a client's task takes.

A client's task in a round costs (Lai et al. 2021, FedScale, section 4; Bonawitz et al. 2019)::

    time_k = samples_k / speed_k + bytes_up_k / uplink_k + bytes_down_k / downlink_k + latency_k

with ``samples_k`` the samples it processes in local training (every minibatch counted) and the
bytes the ones the compression layer reports. Speeds and links are drawn from seeded
log-normal distributions (the shape measured for mobile devices by FedScale's device traces),
from a named profile, or read from a CSV trace.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch

from fedsim.errors import FedsimError
from fedsim.seeding import torch_generator
from fedsim.systems.traces import read_trace

__all__ = ["NAMED_PROFILES", "ClientProfiles", "lognormal_profiles", "read_profile_trace", "task_times"]


@dataclass(frozen=True)
class ClientProfiles:
    """Every client's hardware and links, float64 tensors of shape ``(K,)``.

    Parameters
    ----------
    speed : Tensor
        Training throughput in samples per second.
    uplink, downlink : Tensor
        Bandwidths in bytes per second.
    latency : Tensor
        Fixed per-task overhead in seconds (connection set-up, round trip).
    """

    speed: torch.Tensor
    uplink: torch.Tensor
    downlink: torch.Tensor
    latency: torch.Tensor

    def __post_init__(self) -> None:
        for name in ("speed", "uplink", "downlink"):
            values = getattr(self, name)
            if not bool(torch.isfinite(values).all()) or not bool((values > 0).all()):
                raise FedsimError(f"systems: every client's {name} must be a positive finite number")
        if not bool(torch.isfinite(self.latency).all()) or bool((self.latency < 0).any()):
            raise FedsimError("systems: every client's latency must be a finite number >= 0")

    @property
    def num_clients(self) -> int:
        return int(self.speed.numel())


#: Medians (speed in samples/s, links in bytes/s, latency in s) and log-normal sigmas of named
#: device populations. "mobile" follows the spread of FedScale's phone traces (about one order of
#: magnitude between the 10th and 90th percentile); "cross_silo" is a few well-connected servers.
NAMED_PROFILES: dict[str, dict[str, float]] = {
    "mobile": {"speed": 200.0, "speed_sigma": 0.8, "uplink": 1.0e6, "uplink_sigma": 1.0,
               "downlink": 5.0e6, "downlink_sigma": 1.0, "latency": 0.1},
    "cross_silo": {"speed": 5000.0, "speed_sigma": 0.2, "uplink": 1.0e8, "uplink_sigma": 0.2,
                   "downlink": 1.0e8, "downlink_sigma": 0.2, "latency": 0.01},
    "uniform": {"speed": 1000.0, "speed_sigma": 0.0, "uplink": 1.0e7, "uplink_sigma": 0.0,
                "downlink": 1.0e7, "downlink_sigma": 0.0, "latency": 0.0},
}


def _lognormal(num: int, median: float, sigma: float, generator: torch.Generator) -> torch.Tensor:
    return median * torch.exp(sigma * torch.randn(num, generator=generator, dtype=torch.float64))


def lognormal_profiles(
    num_clients: int,
    *,
    seed: int,
    speed: float,
    speed_sigma: float,
    uplink: float,
    uplink_sigma: float,
    downlink: float,
    downlink_sigma: float,
    latency: float,
) -> ClientProfiles:
    """Log-normal speeds and links with the given medians and sigmas of the underlying normal.

    Each quantity has its own stream ``(seed, "systems_<quantity>")``, so changing one
    distribution does not move another's draws.
    """
    def draw(name: str, median: float, sigma: float) -> torch.Tensor:
        return _lognormal(num_clients, median, sigma, torch_generator(seed, f"systems_{name}"))

    return ClientProfiles(
        speed=draw("speed", speed, speed_sigma),
        uplink=draw("uplink", uplink, uplink_sigma),
        downlink=draw("downlink", downlink, downlink_sigma),
        latency=torch.full((num_clients,), float(latency), dtype=torch.float64),
    )


def read_profile_trace(path: str | Path, num_clients: int) -> ClientProfiles:
    """Profiles from a CSV with header ``client,speed,up,down`` and optional ``latency``.

    Every client ``0..K-1`` must appear exactly once; a missing, repeated or unparsable row is a
    one-line error naming the file and the row.
    """
    rows = read_trace(path, ("client", "speed", "up", "down"), "systems.devices.trace")
    values = torch.full((4, num_clients), math.nan, dtype=torch.float64)
    for line, row in enumerate(rows, start=2):
        try:
            client = int(row["client"])
            entry = [float(row["speed"]), float(row["up"]), float(row["down"]), float(row.get("latency") or 0.0)]
        except (TypeError, ValueError):
            raise FedsimError(f"systems.devices.trace: {path} line {line}: not a number") from None
        if not 0 <= client < num_clients:
            raise FedsimError(f"systems.devices.trace: {path} line {line}: client {client} outside 0..{num_clients - 1}")
        if not math.isnan(float(values[0, client])):
            raise FedsimError(f"systems.devices.trace: {path} line {line}: client {client} appears twice")
        values[:, client] = torch.tensor(entry, dtype=torch.float64)
    missing = torch.isnan(values[0]).nonzero().flatten().tolist()
    if missing:
        raise FedsimError(f"systems.devices.trace: {path} has no row for client(s) {missing[:5]} (it must list all {num_clients})")
    return ClientProfiles(speed=values[0], uplink=values[1], downlink=values[2], latency=values[3])


def task_times(
    profiles: ClientProfiles,
    clients: torch.Tensor,
    samples: torch.Tensor,
    bytes_up: torch.Tensor,
    bytes_down: torch.Tensor,
) -> torch.Tensor:
    """Seconds each client in ``clients`` needs: compute + upload + download + latency (module docstring)."""
    clients = clients.long()
    return (
        samples.double() / profiles.speed[clients]
        + bytes_up.double() / profiles.uplink[clients]
        + bytes_down.double() / profiles.downlink[clients]
        + profiles.latency[clients]
    )
