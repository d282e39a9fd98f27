"""Train-time augmentation of image data: random crop with zero padding and random horizontal flip.

The standard CIFAR recipe (He et al. 2016, sec. 4.2: pad 4, random 32x32 crop, random flip).
Draws are seeded per ``(seed, "augment", round, client)``, so a client's augmented samples are the
same whichever runtime trains it; the crop and flip themselves are one batched gather on the
device for the whole cohort. Each sample gets one draw per round (with several local epochs,
every epoch of a round sees the same augmented copy).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from fedsim.errors import FedsimError
from fedsim.seeding import torch_generator

__all__ = ["Augmentation"]


@dataclass(frozen=True)
class Augmentation:
    """Random crop of the zero-padded image (``crop_padding`` pixels each side) and, with ``flip``,
    a horizontal flip with probability 1/2."""

    input_shape: tuple[int, int, int]
    crop_padding: int = 4
    flip: bool = False

    def __post_init__(self) -> None:
        if len(self.input_shape) != 3:
            raise FedsimError(f"data.augment: needs an image data set (C, H, W), got inputs of shape {self.input_shape}")
        if self.crop_padding < 0:
            raise FedsimError(f"data.augment.crop_padding: must be >= 0, got {self.crop_padding}")

    def draw(self, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Crop offsets ``(n, 2)`` in ``[0, 2 * crop_padding]`` and flip flags ``(n,)`` from ``generator``."""
        offsets = torch.randint(0, 2 * self.crop_padding + 1, (n, 2), generator=generator)
        flips = torch.rand(n, generator=generator) < 0.5 if self.flip else torch.zeros(n, dtype=torch.bool)
        return offsets, flips

    def apply(self, x: torch.Tensor, offsets: torch.Tensor, flips: torch.Tensor) -> torch.Tensor:
        """Augment flat rows ``x`` ``(n, C*H*W)``: row i cropped at ``offsets[i]``, flipped where ``flips[i]``."""
        c, h, w = self.input_shape
        n = x.shape[0]
        img = x.reshape(n, c, h, w)
        p = self.crop_padding
        if p:
            padded = torch.nn.functional.pad(img, (p, p, p, p))
            rows = (offsets[:, 0:1].to(x.device) + torch.arange(h, device=x.device))[:, None, :, None]  # (n, 1, H, 1)
            cols = (offsets[:, 1:2].to(x.device) + torch.arange(w, device=x.device))[:, None, None, :]  # (n, 1, 1, W)
            batch = torch.arange(n, device=x.device)[:, None, None, None]
            chan = torch.arange(c, device=x.device)[None, :, None, None]
            img = padded[batch, chan, rows, cols]
        if self.flip:
            img = torch.where(flips.to(x.device)[:, None, None, None], img.flip(-1), img)
        return img.reshape(n, -1)

    def cohort(self, x: torch.Tensor, sizes: Sequence[int], clients: Sequence[int], seed: int, rnd: int) -> torch.Tensor:
        """Augment the concatenated samples ``x`` of ``clients`` (``sizes[i]`` rows each), each
        client's draws from its own ``(seed, "augment", rnd, client)`` stream."""
        draws = [self.draw(n, torch_generator(seed, "augment", rnd, client)) for n, client in zip(sizes, clients)]
        if not draws:
            return x
        offsets = torch.cat([d[0] for d in draws])
        flips = torch.cat([d[1] for d in draws])
        return self.apply(x, offsets, flips)
