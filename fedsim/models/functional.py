"""A module evaluated at a flat parameter vector, and model evaluation."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from fedsim.errors import FedsimError
from fedsim.params import ParamSpec

__all__ = ["FunctionalModel", "evaluate"]


class FunctionalModel:
    """View of an ``nn.Module`` as a function of a flat parameter vector.

    The module supplies the architecture only; its own parameter values are used once, as
    :meth:`initial_params`. Models with buffers (batch norm statistics) are refused: their
    state is not part of the flat vector and would silently leak between clients.
    """

    def __init__(self, module: nn.Module) -> None:
        if any(True for _ in module.buffers()):
            raise FedsimError(
                f"model: {type(module).__name__} has buffers (e.g. BatchNorm statistics); "
                "fedsim trains stateless models only (use GroupNorm/LayerNorm instead)"
            )
        self.module = module
        self.spec = ParamSpec.from_module(module)

    @property
    def dim(self) -> int:
        return self.spec.numel

    def initial_params(self) -> torch.Tensor:
        return self.spec.flatten(dict(self.module.named_parameters())).detach().clone()

    def to(self, device: torch.device | str) -> "FunctionalModel":
        self.module.to(device)
        return self

    def logits(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return functional_call(self.module, self.spec.unflatten(params), (x,))

    def loss(self, params: torch.Tensor, x: torch.Tensor, y: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
        """Mean cross-entropy; with ``weight`` (0/1 mask), the mean over the samples where it is 1."""
        per_sample = F.cross_entropy(self.logits(params, x), y, reduction="none")
        if weight is None:
            return per_sample.mean()
        return (per_sample * weight).sum() / weight.sum().clamp_min(1.0)

    def loss_and_grad(self, params: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Minibatch loss and its gradient with respect to the flat parameters (plain autograd)."""
        # Differentiate with respect to each tensor's view, not the flat vector: the backward of
        # slicing a flat leaf allocates and zero-fills a full-length gradient per tensor, which
        # doubled the cost of a small model's step.
        named = {name: t.detach().requires_grad_(True) for name, t in self.spec.unflatten(params).items()}
        loss = F.cross_entropy(functional_call(self.module, named, (x,)), y)
        grads = torch.autograd.grad(loss, tuple(named.values()))
        return loss.detach(), torch.cat([g.reshape(-1) for g in grads])


@torch.no_grad()
def evaluate(model: FunctionalModel, params: torch.Tensor, x: torch.Tensor, y: torch.Tensor, batch_size: int = 2500) -> tuple[float, float]:
    """Accuracy and mean cross-entropy of ``params`` on ``(x, y)``."""
    correct, total_loss = 0, 0.0
    for start in range(0, len(y), batch_size):
        logits = model.logits(params, x[start : start + batch_size])
        yb = y[start : start + batch_size]
        total_loss += F.cross_entropy(logits, yb, reduction="sum").item()
        correct += (logits.argmax(1) == yb).sum().item()
    return correct / len(y), total_loss / len(y)
