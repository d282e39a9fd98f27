"""The shipped robustness configs validate and build what they say."""

from __future__ import annotations

import pytest

from fedsim.config.loading import load_config
from tests.helpers import REPO

CONFIGS = {
    "robust_adversarial": ("fedavg", "adversarial", None),
    "robust_tulip": ("fedavg", "tulip", None),
    "robust_byzantine_median": ("fedavg", None, "median"),
    "robust_byzantine_krum": ("fedavg", None, "multi_krum"),
    "robust_byzantine_centered_clipping": ("fedavg", None, "centered_clipping"),
    "robust_byzantine_geometric_median": ("fedavg", None, "geometric_median"),
    "robust_gossip": ("dpsgd", None, None),
}


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_robust_configs_validate(name):
    kind, training, aggregator = CONFIGS[name]
    cfg = load_config(REPO / "configs" / f"{name}.yaml")
    assert cfg.algorithm.kind == kind and cfg.robustness is not None
    assert (cfg.robustness.training.kind if cfg.robustness.training else None) == training
    if aggregator:
        assert cfg.algorithm.aggregator.kind == aggregator and cfg.robustness.byzantine.fraction == 0.2
    if kind == "dpsgd":
        assert cfg.algorithm.robust_gossip.kind == "clipped"
