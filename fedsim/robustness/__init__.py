"""Robustness: adversarial attacks and training objectives, robust evaluation, Byzantine clients,
robust aggregation and robust gossip (each module cites its papers)."""

from fedsim.robustness.aggregators import AGGREGATORS, Aggregator
from fedsim.robustness.attacks import carlini_wagner_l2, fgm, fgsm, pgd, project
from fedsim.robustness.byzantine import BYZANTINE_ATTACKS, apply_attack, byzantine_clients
from fedsim.robustness.gossip import clipped_gossip, trimmed_mean_gossip
from fedsim.robustness.training import AdversarialObjective, GradientNormObjective, Objective, TulipObjective

__all__ = [
    "AGGREGATORS",
    "AdversarialObjective",
    "Aggregator",
    "BYZANTINE_ATTACKS",
    "GradientNormObjective",
    "Objective",
    "TulipObjective",
    "apply_attack",
    "byzantine_clients",
    "carlini_wagner_l2",
    "clipped_gossip",
    "fgm",
    "fgsm",
    "pgd",
    "project",
    "trimmed_mean_gossip",
]
