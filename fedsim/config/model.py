"""The ``model:`` section: which architecture of :mod:`fedsim.models.zoo` and its sizes.

Input shape and class count are not configured: they come from the data set, so any model runs
on any compatible data set. A new architecture is a new ``kind`` literal here (and its builder in
the zoo).
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field, NonNegativeFloat, PositiveInt

from fedsim.config.base import Section
from fedsim.data.federated import FederatedData
from fedsim.models.zoo import build_model

__all__ = ["ModelConfig"]


class ModelConfig(Section):
    kind: Literal["logistic", "mlp", "cnn", "cnn_fedavg", "resnet", "enresnet", "char_lstm"] = "mlp"
    hidden: list[PositiveInt] = Field(default_factory=lambda: [200], description="MLP hidden widths")
    channels: tuple[PositiveInt, PositiveInt] = Field((6, 16), description="CNN conv channels")
    depth: Literal[8, 20, 18] = Field(20, description="resnet, enresnet: 8 or 20 (He et al. 2016's CIFAR ResNets) or 18 (ImageNet-style, 32x32 stem)")
    width: PositiveInt | None = Field(None, description="resnet, enresnet: first stage's channels, doubled per stage (null: 16, or 64 for depth 18)")
    ensemble: PositiveInt = Field(1, description="enresnet: n, the jointly trained ResNets whose logits are averaged")
    noise_std: NonNegativeFloat = Field(
        0.1, allow_inf_nan=False,
        description="enresnet: sigma, Gaussian noise added to each residual block's output, relative to its std (0: none)",
    )
    norm_groups: PositiveInt = Field(2, description="resnet: GroupNorm groups per layer (stateless, unlike BatchNorm)")
    embed_dim: PositiveInt = Field(8, description="char_lstm: character embedding size")
    lstm_hidden: PositiveInt = Field(256, description="char_lstm: LSTM width")
    lstm_layers: PositiveInt = Field(2, description="char_lstm: stacked LSTM layers")

    def build(self, seed: int, data: FederatedData) -> torch.nn.Module:
        """The model, sized from ``data`` (input shape, classes); a model ``data`` cannot feed is a FedsimError."""
        return build_model(
            self.kind, seed=seed, input_shape=data.input_shape, num_classes=data.num_classes, input_kind=data.kind,
            vocab_size=data.vocab_size, dataset=data.name, **self.model_dump(exclude={"kind"}),
        )
