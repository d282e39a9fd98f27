"""Byzantine clients: who they are and what they send.

A seeded set of malicious clients (:func:`byzantine_clients`) replaces its rows of the round's
``(C, d)`` update matrix by one of the attacks below (:func:`apply_attack`). Every attack is a
function ``attack(own, honest, generator, **options) -> (B, d)``: ``own`` are the rows the
Byzantine clients computed by honest training (what a non-omniscient attacker knows), ``honest``
the honest rows of the same round (what an omniscient attacker also sees: ALIE, IPM).
Label flipping is data poisoning and works on labels instead (:func:`flip_labels`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from fedsim.errors import FedsimError
from fedsim.seeding import torch_generator

__all__ = [
    "BYZANTINE_ATTACKS",
    "OMNISCIENT_ATTACKS",
    "ByzantineClients",
    "poison_labels",
    "alie",
    "apply_attack",
    "byzantine_clients",
    "flip_labels",
    "gaussian",
    "inner_product_manipulation",
    "scaling",
    "sign_flip",
]


def byzantine_clients(num_clients: int, fraction: float, seed: int) -> list[int]:
    """``round(fraction * K)`` clients drawn without replacement from the ``(seed, "byzantine")`` stream."""
    if not 0.0 <= fraction < 1.0:
        raise FedsimError(f"robustness.byzantine.fraction: must be in [0, 1), got {fraction}")
    count = int(round(fraction * num_clients))
    perm = torch.randperm(num_clients, generator=torch_generator(seed, "byzantine"))
    return sorted(perm[:count].tolist())


def sign_flip(own: Tensor, honest: Tensor, generator: torch.Generator, scale: float = 1.0) -> Tensor:
    """Send ``-scale * Delta_own`` (the reversed-gradient attack, e.g. Allen-Zhu et al. 2021)."""
    return -scale * own


def gaussian(own: Tensor, honest: Tensor, generator: torch.Generator, sigma: float = 1.0) -> Tensor:
    """Send ``N(0, sigma^2 I)`` noise, drawn from the round's Byzantine stream."""
    noise = torch.randn(own.shape, generator=generator, dtype=own.dtype)
    return sigma * noise.to(own.device)


def scaling(own: Tensor, honest: Tensor, generator: torch.Generator, scale: float = 10.0) -> Tensor:
    """Model replacement (Bagdasaryan et al., AISTATS 2020, arXiv:1807.00459): send ``scale * Delta_own``
    so the attacker's update survives averaging with the honest ones.
    """
    return scale * own


def alie(own: Tensor, honest: Tensor, generator: torch.Generator, z: float | None = None) -> Tensor:
    """A Little Is Enough (Baruch, Baruch and Goldberg, NeurIPS 2019, arXiv:1902.06156).

    Every attacker sends ``mu - z sigma`` (coordinate-wise mean and std of the honest updates),
    with ``z`` from their eq. (1): ``s = floor(n/2 + 1) - f`` and ``z = Phi^{-1}((n - s) / n)``.
    Omniscient: it reads the round's honest rows.
    """
    if honest.shape[0] < 2:
        return own.clone()
    if z is None:
        n = honest.shape[0] + own.shape[0]
        s = n // 2 + 1 - own.shape[0]
        z = float(torch.distributions.Normal(0.0, 1.0).icdf(torch.tensor((n - s) / n)).clamp(min=0.0))
    row = honest.mean(0) - z * honest.std(0)
    return row.expand_as(own).clone()


def inner_product_manipulation(own: Tensor, honest: Tensor, generator: torch.Generator, epsilon: float = 0.5) -> Tensor:
    """Inner-product manipulation (Xie, Koyejo and Gupta, UAI 2020, arXiv:1903.03936): every attacker
    sends ``-epsilon * mean(honest)``, making the aggregate's inner product with the true update
    negative for robust rules that keep it. Omniscient.
    """
    if honest.shape[0] == 0:
        return -epsilon * own
    return (-epsilon * honest.mean(0)).expand_as(own).clone()


def flip_labels(y: Tensor, num_classes: int) -> Tensor:
    """Label flipping (data poisoning, e.g. Fang et al. 2020): ``y -> num_classes - 1 - y``."""
    return num_classes - 1 - y


BYZANTINE_ATTACKS: dict[str, Callable[..., Tensor]] = {
    "sign_flip": sign_flip,
    "gaussian": gaussian,
    "scaling": scaling,
    "alie": alie,
    "ipm": inner_product_manipulation,
}


# Attacks whose rows are functions of the round's honest updates (they read what only the server should see).
OMNISCIENT_ATTACKS = ("alie", "ipm")


def apply_attack(updates: Tensor, malicious: Tensor, attack: str, generator: torch.Generator, **options: float) -> Tensor:
    """Replace the rows where ``malicious`` (a (C,) bool mask) is true by ``attack``'s output.

    ``label_flip`` changes nothing here (its clients trained on flipped labels already).
    """
    if attack == "label_flip" or not bool(malicious.any()):
        return updates
    if attack not in BYZANTINE_ATTACKS:
        allowed = ", ".join([*BYZANTINE_ATTACKS, "label_flip"])
        raise FedsimError(f"robustness.byzantine.attack: '{attack}' is unknown (allowed: {allowed})")
    out = updates.clone()
    out[malicious] = BYZANTINE_ATTACKS[attack](updates[malicious], updates[~malicious], generator, **options).to(updates.dtype)
    return out


def poison_labels(y: Tensor, client_indices: Sequence[Tensor], clients: Sequence[int], num_classes: int) -> Tensor:
    """A copy of the training labels with the rows of ``clients`` flipped (:func:`flip_labels`)."""
    y = y.clone()
    for c in clients:
        idx = client_indices[c].to(y.device)
        y[idx] = flip_labels(y[idx], num_classes)
    return y


@dataclass(frozen=True)
class ByzantineClients:
    """The malicious clients of a federation and their attack.

    Parameters
    ----------
    clients : tuple of int
        Byzantine client ids (from :func:`byzantine_clients`).
    attack : str
        A key of :data:`BYZANTINE_ATTACKS`, or ``label_flip`` (data poisoning: the labels were
        flipped once, before training, by :func:`poison_labels`; their updates are sent as is).
    options : dict
        The attack's keyword options.
    seed : int
        Root seed; round t's randomness is the ``(seed, "byzantine", t)`` stream.
    """

    clients: tuple[int, ...]
    attack: str = "sign_flip"
    options: dict[str, Any] = field(default_factory=dict)
    seed: int = 0

    def __post_init__(self) -> None:
        if self.attack != "label_flip" and self.attack not in BYZANTINE_ATTACKS:
            allowed = ", ".join([*BYZANTINE_ATTACKS, "label_flip"])
            raise FedsimError(f"robustness.byzantine.attack: '{self.attack}' is unknown (allowed: {allowed})")

    def mask(self, cohort: Sequence[int]) -> Tensor:
        bad = set(self.clients)
        return torch.tensor([c in bad for c in cohort], dtype=torch.bool)

    def corrupt(self, updates: Tensor, cohort: Sequence[int], rnd: int) -> Tensor:
        """The ``(C, d)`` matrix the server receives: Byzantine rows replaced by the attack."""
        mask = self.mask(cohort).to(updates.device)
        return apply_attack(updates, mask, self.attack, torch_generator(self.seed, "byzantine", rnd), **self.options)
