"""Every federated algorithm builds from its config, and bad values get one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from fedsim.algorithms.federated import FedAdam, FedProx, FedYogi, ParallelSGD, PoissonSampling, Scaffold
from fedsim.config.loading import validate_config
from fedsim.config.base import BuildContext
from fedsim.errors import FedsimError
from tests.helpers import small_config
from tests.helpers import tiny_federation

KINDS = ["fedavg", "parallel_sgd", "fedprox", "fedavgm", "fedadagrad", "fedadam", "fedyogi", "scaffold"]


def algorithm_config(tmp_path: Path, **algorithm: object) -> dict:
    cfg = small_config(tmp_path)
    cfg["algorithm"] = algorithm
    return cfg


@pytest.mark.parametrize(
    "algorithm, needles",
    [
        ({"kind": "fedfoo"}, ["algorithm.kind", "fedfoo", *KINDS]),
        ({"kind": "fedprox", "mu": -0.1}, ["algorithm.mu", "greater than or equal to 0", "-0.1"]),
        ({"kind": "fedavgm", "momentum": 1.0}, ["algorithm.momentum", "less than 1"]),
        ({"kind": "fedadam", "beta1": 1.0}, ["algorithm.beta1", "less than 1"]),
        ({"kind": "fedyogi", "beta2": -0.5}, ["algorithm.beta2", "greater than or equal to 0"]),
        ({"kind": "fedavg", "participation": {"kind": "poisson", "q": 0}}, ["algorithm.participation.q", "greater than 0"]),
        ({"kind": "fedavg", "participation": {"kind": "poisson", "q": 1.5}}, ["algorithm.participation.q", "less than or equal to 1"]),
        ({"kind": "fedavg", "participation": {"kind": "poisson"}}, ["algorithm.participation.q", "missing"]),
        ({"kind": "fedavg", "participation": {"kind": "sometimes"}}, ["algorithm.participation.kind", "sometimes", "poisson"]),
        ({"kind": "fedavg", "lr_schedule": {"kind": "linear"}}, ["algorithm.lr_schedule.kind", "linear", "cosine"]),
        ({"kind": "fedavg", "local_work": {"values": [1, 2], "probs": [1.0]}}, ["algorithm.local_work.probs", "must match"]),
    ],
)
def test_bad_algorithm_values_get_one_line_errors(tmp_path, cli, algorithm, needles):
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(algorithm_config(tmp_path, **algorithm)))
    code, _, err = cli("run", str(path))
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_builds_its_algorithm(tmp_path, kind):
    cfg = validate_config(algorithm_config(tmp_path, kind=kind, participation={"kind": "poisson", "q": 0.5}))
    algo = cfg.algorithm.build(BuildContext(seed=0, data=tiny_federation([5, 5, 5])))
    assert isinstance(algo.participation, PoissonSampling) and algo.participation.rate == 0.5
    expected = {"parallel_sgd": ParallelSGD, "fedprox": FedProx, "fedadam": FedAdam, "fedyogi": FedYogi, "scaffold": Scaffold}
    if kind in expected:
        assert type(algo) is expected[kind]


def test_full_participation_ignores_clients_per_round(tmp_path):
    cfg = small_config(tmp_path, clients_per_round=500, participation={"kind": "full"})
    validate_config(cfg)
    with pytest.raises(FedsimError, match="clients_per_round"):
        validate_config(small_config(tmp_path, clients_per_round=500))


@pytest.mark.parametrize(
    "name, kind",
    [("parallel_sgd", "parallel_sgd"), ("fedavg_noniid", "fedavg"), ("fedprox", "fedprox"), ("fedadam", "fedadam"), ("fedyogi", "fedyogi"), ("scaffold", "scaffold")],
)
def test_shipped_configs_validate(name, kind):
    from fedsim.config.loading import load_config
    from tests.helpers import REPO

    assert load_config(REPO / "configs" / f"{name}.yaml").algorithm.kind == kind
