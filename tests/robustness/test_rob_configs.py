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


def test_cw_options_reach_the_attack_and_are_refused_for_other_attacks():
    from pydantic import ValidationError

    from fedsim.config.robustness import EvalAttack

    spec = EvalAttack(attack="cw", eps=[1.0], binary_search_steps=4, initial_const=0.01, kappa=0.5).spec()
    assert (spec.steps, spec.cw_binary_search_steps, spec.cw_initial_const, spec.cw_kappa, spec.cw_lr) == (100, 4, 0.01, 0.5, 0.01)
    assert EvalAttack(attack="pgd").spec().steps == 20
    with pytest.raises(ValidationError, match="apply to attack cw only"):
        EvalAttack(attack="pgd", kappa=1.0)
