"""Helpers shared by the test modules: paths, a small run config, tiny federations, comparisons.

The small federations are random features on a logistic model, and a heterogeneous quadratic
whose global minimiser is known in closed form. Fixtures live in ``tests/conftest.py``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import torch

from fedsim.data.federated import FederatedData
from fedsim.models import FunctionalModel, build_model

REPO = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
TOL = 1e-5  # serial vs vectorized vs Ray: float32 sums in another order


def small_config(tmp_path: Path, **algorithm: object) -> dict:
    """A FedAvg config that runs in about a second: logistic model, 5 of 50 clients, 2 rounds."""
    return {
        "seed": 0,
        "data": {"num_clients": 50, "partition": {"kind": "dirichlet", "alpha": 0.5}},
        "model": {"kind": "logistic"},
        "algorithm": {"kind": "fedavg", "rounds": 2, "clients_per_round": 5, "lr": 0.05, **algorithm},
        "runtime": {"kind": "serial", "device": "cpu"},
        "output": {"dir": str(tmp_path / "run"), "plot": False},
    }


def subprocess_env() -> dict[str, str]:
    """The environment for a CLI subprocess, with this checkout first on PYTHONPATH."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def without_wall(rows):
    """Metrics rows without ``wall_s``, the one field that differs between equal runs."""
    return [{k: v for k, v in r.items() if k != "wall_s"} for r in rows]


def assert_rows_close(a, b, tol=TOL):
    """Metrics rows equal, floats within ``tol``."""
    assert len(a) == len(b)
    for ra, rb in zip(without_wall(a), without_wall(b)):
        assert ra.keys() == rb.keys()
        for key in ra:
            if isinstance(ra[key], float):
                assert ra[key] == pytest.approx(rb[key], abs=tol), key
            else:
                assert ra[key] == rb[key], key


def assert_cohorts_close(a, b, tol=TOL):
    """Two runtimes' :class:`~fedsim.runtimes.base.CohortResult` agree within ``tol``."""
    assert a.clients == b.clients
    torch.testing.assert_close(a.updates, b.updates, atol=tol, rtol=0)
    torch.testing.assert_close(a.train_loss, b.train_loss, atol=tol, rtol=0)
    assert torch.equal(a.num_samples, b.num_samples) and torch.equal(a.bits_up, b.bits_up)
    assert len(a.states) == len(b.states)
    for sa, sb in zip(a.states, b.states):
        assert sa.keys() == sb.keys()
        for key in sa:
            torch.testing.assert_close(sa[key], sb[key], atol=tol, rtol=0)


class Interrupt:
    """A progress hook that stops the run (as Ctrl-C does) once ``after`` rounds are complete."""

    def __init__(self, after: int) -> None:
        self.after = after

    def __call__(self, row):
        if row["round"] == self.after:
            raise KeyboardInterrupt


def tiny_federation(sizes: list[int], seed: int = 0) -> FederatedData:
    """Clients of the given sizes holding random 784-feature samples with random labels."""
    gen = torch.Generator().manual_seed(seed)
    n = sum(sizes)
    x, y = torch.randn(n, 784, generator=gen), torch.randint(0, 10, (n,), generator=gen)
    bounds = torch.tensor([0, *sizes]).cumsum(0)
    idx = [torch.arange(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])]
    return FederatedData(x, y, idx, x[:10], y[:10])


def logistic() -> FunctionalModel:
    return FunctionalModel(build_model("logistic", seed=0))


class OpaqueRuntime:
    """Only the runtime interface (``run_cohort``): an algorithm that reaches for the runtime's
    ``model`` or ``data`` fails on it."""

    def __init__(self, inner) -> None:
        self._inner = inner

    def run_cohort(self, *args, **kwargs):
        return self._inner.run_cohort(*args, **kwargs)


class QuadraticModel:
    """``f_k(w) = mean_i 1/2 sum_j a_ij (w_j - b_ij)^2`` with sample rows ``x_i = [a_i, b_i]``.

    Duck-types the part of :class:`~fedsim.models.FunctionalModel` that local SGD uses.
    """

    #: No forward noise (FunctionalModel.noise_numel for a model without noisy layers).
    noise_numel = 0

    def __init__(self, dim: int) -> None:
        self.dim = dim

    def to(self, device: torch.device | str) -> "QuadraticModel":
        return self

    def draw_noise(self, rows: int, generator: torch.Generator | None, like: torch.Tensor) -> None:
        return None

    def loss_and_grad(self, w: torch.Tensor, x: torch.Tensor, y: torch.Tensor, noise: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        a, b = x[:, : self.dim], x[:, self.dim :]
        return (0.5 * a * (w - b) ** 2).sum(1).mean(), (a * (w - b)).mean(0)


def heterogeneous_quadratic(num_clients: int = 4, samples: int = 6, dim: int = 5, seed: int = 0) -> tuple[FederatedData, QuadraticModel, torch.Tensor]:
    """Clients with different curvatures and minimisers; returns the data, the model and the
    minimiser ``w* = sum a b / sum a`` (coordinate-wise) of the uniform average of the client losses."""
    gen = torch.Generator().manual_seed(seed)
    n = num_clients * samples
    # Curvature differs by client (0.2 .. 2), so local steps drift towards each client's own minimiser.
    scale = torch.linspace(0.2, 2.0, num_clients).repeat_interleave(samples)[:, None]
    a = scale * (0.5 + torch.rand(n, dim, generator=gen, dtype=torch.float64))
    b = 3.0 * torch.randn(num_clients, 1, dim, generator=gen, dtype=torch.float64).expand(num_clients, samples, dim).reshape(n, dim)
    b = b + 0.1 * torch.randn(n, dim, generator=gen, dtype=torch.float64)
    x = torch.cat([a, b], 1)
    idx = [torch.arange(k * samples, (k + 1) * samples) for k in range(num_clients)]
    y = torch.zeros(n, dtype=torch.long)
    w_star = (a * b).sum(0) / a.sum(0)
    return FederatedData(x, y, idx, x[:1], y[:1]), QuadraticModel(dim), w_star


def flower_processes(home: Path) -> list[int]:
    """Live processes whose FLWR_HOME is ``home``: every Flower process a deployment started."""
    needle = f"FLWR_HOME={home.resolve()}".encode()
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and needle in (entry / "environ").read_bytes().split(b"\0"):
                if (entry / "stat").read_text().rsplit(")", 1)[1].split()[0] not in ("Z", "X"):
                    pids.append(int(entry.name))
        except OSError:
            continue
    return pids
