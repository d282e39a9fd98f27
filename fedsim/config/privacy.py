"""The ``privacy:`` section and the private algorithms that read it (DP-Fed-LS / DP-FedAvg at user
level, DP-LSSGD / DP-SGD at sample level).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Literal

from pydantic import Field, NonNegativeFloat, PositiveFloat, PositiveInt, model_validator
from pydantic_core import PydanticCustomError

from fedsim.algorithms.base import Algorithm
from fedsim.algorithms.dp_fed_ls import ClippedClientTask, DPFedLS, Smoothing
from fedsim.algorithms.dp_lssgd import DPLSSGD
from fedsim.config.base import BuildContext, Section
from fedsim.config.federated import FedAvgConfig
from fedsim.errors import FedsimError
from fedsim.privacy.accountant import PrivacyAccountant
from fedsim.privacy.calibration import calibrate_noise_multiplier

__all__ = ["DPFedLSConfig", "DPLSSGDConfig", "PrivacyConfig"]


class PrivacyConfig(Section):
    """The ``privacy:`` section, read by the private algorithms (dp_fed_ls, dp_lssgd)."""

    noise_multiplier: NonNegativeFloat | None = Field(None, description="z: noise std on the sum / clip_norm")
    target_epsilon: PositiveFloat | None = Field(None, description="Calibrate z before the run so the planned rounds spend this epsilon")
    delta: float | None = Field(None, gt=0, lt=1, description="Target delta; default 1/N^1.1, N the privacy units (clients for dp_fed_ls, examples for dp_lssgd)")
    clip_norm: PositiveFloat = Field(1.0, description="G: l2 bound on each client's update")
    clip_mode: Literal["end_of_round", "every_step"] = "end_of_round"
    budget: PositiveFloat | None = Field(None, description="Stop before the round whose epsilon would exceed this")
    accountant: Literal["rdp", "prv"] = "rdp"
    denominator: Literal["expected", "realized"] = Field("expected", description="Poisson sampling: divide by the expected or the realized cohort size")

    @model_validator(mode="after")
    def _one_noise_source(self) -> "PrivacyConfig":
        if (self.noise_multiplier is None) == (self.target_epsilon is None):
            raise PydanticCustomError("fedsim", "privacy: set exactly one of noise_multiplier and target_epsilon", {})
        return self

    def resolve_delta(self, units: int) -> float:
        return self.delta if self.delta is not None else units ** -1.1

    def resolve_noise(self, *, sample_rate: float, steps: int, delta: float, sampling: str = "poisson",
                      population: int | None = None) -> float:
        # Calibrated with the analysis the ledger will use (same sampling scheme and adjacency).
        if self.noise_multiplier is not None:
            return self.noise_multiplier
        return calibrate_noise_multiplier(target_epsilon=self.target_epsilon, delta=delta, sample_rate=sample_rate,
                                          steps=steps, accountant=self.accountant, sampling=sampling,
                                          population=population)


def _smoothing(section: "DPFedLSConfig | DPLSSGDConfig", ctx: BuildContext) -> Smoothing:
    """The section's Laplacian smoothing, with the model's tensor sizes that ``per_tensor`` needs."""
    return Smoothing(section.ls_sigma, section.ls_order, section.ls_mode, sizes=ctx.spec.numels if ctx.spec else None)


def _privacy(ctx: BuildContext, kind: str) -> PrivacyConfig:
    """The ``privacy:`` section a private algorithm needs; a one-line error without it."""
    if ctx.privacy is None:
        raise FedsimError(f"privacy: section required by algorithm.kind={kind} (noise_multiplier or target_epsilon)")
    return ctx.privacy


class DPFedLSConfig(FedAvgConfig):
    """DP-Fed-LS / DP-FedAvg (ls_sigma = 0); noise, clip and accounting come from ``privacy:``."""

    kind: Literal["dp_fed_ls"] = "dp_fed_ls"  # type: ignore[assignment]  # a subclass narrows the kind tag
    weighting: Literal["uniform"] = "uniform"
    ls_sigma: NonNegativeFloat = Field(0.0, description="Laplacian smoothing strength; 0 is DP-FedAvg")
    ls_order: PositiveInt = 1
    ls_mode: Literal["per_tensor", "global_flat"] = "per_tensor"

    def build(self, ctx: BuildContext) -> Algorithm:
        priv = _privacy(ctx, "dp_fed_ls")
        kwargs = self.fedavg_kwargs(ctx)
        k = ctx.data.num_clients
        q = kwargs["participation"].expected_size(k) / k
        delta = priv.resolve_delta(k)
        sampling = self.participation.kind
        z = priv.resolve_noise(sample_rate=q, steps=self.rounds, delta=delta, sampling=sampling, population=k)
        local = replace(self.local_sgd(), clip_radius=priv.clip_norm if priv.clip_mode == "every_step" else None)
        kwargs.update(task=ClippedClientTask(local, clip_norm=priv.clip_norm), weighting="uniform")
        accountant = PrivacyAccountant(delta=delta, accountant=priv.accountant, sampling=sampling, unit="user", population=k)
        return DPFedLS(noise_multiplier=z, accountant=accountant, smoothing=_smoothing(self, ctx),
                       denominator=priv.denominator, budget=priv.budget, **kwargs)


class DPLSSGDConfig(Section):
    """DP-LSSGD / DP-SGD (ls_sigma = 0), sample-level; noise, clip and accounting come from ``privacy:``."""

    kind: Literal["dp_lssgd"] = "dp_lssgd"
    rounds: PositiveInt = 100
    batch_size: PositiveInt = Field(128, description="Expected lot size; each example joins a round with q = batch_size / n")
    sampling: Literal["poisson", "uniform"] = Field("poisson", description="poisson lots (rate q) or fixed-size lots of batch_size without replacement (replace-one accounting)")
    lr: PositiveFloat = 0.1
    lr_decay: Literal["constant", "inverse"] = Field("constant", description="inverse: lr / t, the step size 1/t")
    weight_decay: NonNegativeFloat = 0.0
    ls_sigma: NonNegativeFloat = Field(0.0, description="Laplacian smoothing strength; 0 is DP-SGD")
    ls_order: PositiveInt = 1
    ls_mode: Literal["per_tensor", "global_flat"] = "per_tensor"

    def build(self, ctx: BuildContext) -> Algorithm:
        priv = _privacy(ctx, "dp_lssgd")
        n = int(ctx.data.client_sizes().sum())
        if self.batch_size > n:
            raise FedsimError(f"algorithm.batch_size: {self.batch_size} exceeds the {n} training examples")
        q = self.batch_size / n
        delta = priv.resolve_delta(n)
        z = priv.resolve_noise(sample_rate=q, steps=self.rounds, delta=delta, sampling=self.sampling, population=n)
        accountant = PrivacyAccountant(delta=delta, accountant=priv.accountant, sampling=self.sampling, unit="sample",
                                       population=n)
        return DPLSSGD(lr=self.lr, sample_rate=q, noise_multiplier=z, clip_norm=priv.clip_norm, accountant=accountant,
                       client_sizes=ctx.data.client_sizes().tolist(), smoothing=_smoothing(self, ctx),
                       weight_decay=self.weight_decay, lr_decay=self.lr_decay, budget=priv.budget, seed=ctx.seed,
                       sampling=self.sampling)
