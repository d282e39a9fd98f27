"""Client participation: which clients take part in a round."""

from __future__ import annotations

import torch

__all__ = ["uniform_sample"]


def uniform_sample(num_clients: int, clients_per_round: int, generator: torch.Generator) -> list[int]:
    """``clients_per_round`` distinct clients uniformly at random (without replacement), ascending."""
    return sorted(torch.randperm(num_clients, generator=generator)[:clients_per_round].tolist())
