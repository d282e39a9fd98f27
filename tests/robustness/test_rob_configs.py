"""The shipped robustness configs validate and build what they say."""

from __future__ import annotations

import pytest

from fedsim.config.loading import load_config
from fedsim.robustness.aggregators import AGGREGATORS
from tests.helpers import REPO

CONFIGS = {
    "robust_adversarial": ("fedavg", "adversarial", None),
    "robust_tulip": ("fedavg", "tulip", None),
    **{f"robust_byzantine_{rule}": ("fedavg", None, rule) for rule in sorted(AGGREGATORS)},
    "robust_gossip": ("dpsgd", None, None),
}


def test_every_aggregator_family_has_a_shipped_byzantine_config():
    shipped = {p.stem for p in (REPO / "configs").glob("robust_*.yaml")}
    assert shipped == set(CONFIGS)


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


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_robust_configs_run_from_the_readme_command(tmp_path, cli, name):
    # The README's command, one round (and a small robust evaluation) so every config runs in seconds.
    small = ["algorithm.rounds=1", "robustness.evaluation.samples=20", "robustness.evaluation.bisection_steps=2"]
    cfg = load_config(REPO / "configs" / f"{name}.yaml")
    sets = small if cfg.robustness.evaluation is not None else small[:1]
    code, _, err = cli("run", str(REPO / "configs" / f"{name}.yaml"), "--out", str(tmp_path / "run"), *[a for s in sets for a in ("--set", s)])
    assert code == 0, err
    assert (tmp_path / "run" / "summary.json").exists() and (tmp_path / "run" / "params.pt").exists()
