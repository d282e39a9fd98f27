"""The ``robustness:`` section (training objective, robust evaluation, Byzantine clients) and
``algorithm.aggregator``.

Radii (``eps``) are in pixel units, fractions of the data range; they are
converted to input units with the training set's range (:func:`fedsim.robustness.evaluation.data_range`).

Order of the client and server stages, and what it means for DP (enforced here and in
:class:`~fedsim.config.schema.ExperimentConfig`):

    client: local SGD on the robust objective -> update transforms (uplink compression) -> clip to G (DP-Fed-LS)
    attacker: a Byzantine client replaces what it sends (after everything it could have run)
    server: aggregate of the received updates -> Gaussian noise (DP-Fed-LS) -> Laplacian smoothing -> server step

Which orders keep the privacy guarantee (DP-Fed-LS adds noise calibrated to the sensitivity
``G`` of the *sum* of clipped updates):

- compress -> clip (fedsim's order) keeps it for every compressor; clip -> compress would keep it
  only for norm-non-increasing compressors (top-k, not the rescaled random-k or QSGD), so it is
  not offered;
- robust objective -> clip keeps it (the objective is client work; privacy is governed by G);
- robust aggregate -> noise does not: a median or Krum has another sensitivity than the sum, so a
  non-mean aggregator with ``privacy:`` is refused;
- Byzantine replacement after clipping keeps the honest clients' guarantee when the attacker's
  rows do not depend on them (sign_flip, scaling, gaussian, label_flip); an omniscient attack
  (alie, ipm) reads the honest clipped updates and moves with them, so it is refused with
  ``privacy:``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import Field, NonNegativeFloat, PositiveFloat, PositiveInt, model_validator
from pydantic_core import PydanticCustomError

from fedsim.config.base import Section
from fedsim.robustness.aggregators import AGGREGATORS, Aggregator
from fedsim.robustness.byzantine import BYZANTINE_ATTACKS
from fedsim.robustness.evaluation import AttackSpec
from fedsim.robustness.training import AdversarialObjective, GradientNormObjective, Objective, TulipObjective

__all__ = [
    "AggregatorConfig",
    "ByzantineConfig",
    "RobustEvaluationConfig",
    "RobustnessConfig",
    "TrainingObjective",
]


class AggregatorConfig(Section):
    """``algorithm.aggregator``: the server's aggregation rule (FedAvg family's aggregate stage)."""

    kind: Literal[tuple(AGGREGATORS)] = "mean"  # type: ignore[valid-type]  # the allowed names come from the registry
    assumed_fraction: float = Field(0.0, ge=0, lt=0.5, description="Byzantine fraction f/n the rule must tolerate")
    tau: PositiveFloat | None = Field(None, description="centered_clipping: clipping radius")
    iterations: PositiveInt | None = Field(None, description="centered_clipping / geometric_median iterations")
    m: PositiveInt | None = Field(None, description="multi_krum: rows averaged (default n - f)")
    trim: int | None = Field(None, ge=0, description="trimmed_mean: values dropped per side (default f)")

    def build(self) -> Aggregator:
        options = {k: v for k, v in (("tau", self.tau), ("iterations", self.iterations), ("m", self.m), ("trim", self.trim)) if v is not None}
        return Aggregator(kind=self.kind, assumed_fraction=self.assumed_fraction, options=options)


class AdversarialTraining(Section):
    kind: Literal["adversarial"] = "adversarial"
    attack: Literal["fgsm", "fgm", "pgd"] = "fgsm"
    norm: Literal["linf", "l2"] = "linf"
    eps: NonNegativeFloat = Field(0.1, description="Radius in pixel units (fraction of the data range)")
    steps: PositiveInt = 10
    step_size: PositiveFloat | None = Field(None, description="PGD step in pixel units (default 2.5 eps / steps)")
    random_start: bool = False
    mix: float = Field(1.0, ge=0, le=1, description="Weight of the adversarial loss (1 - mix on the clean loss)")

    def build(self, scale: float, bounds: tuple[float, float]) -> Objective:
        return AdversarialObjective(
            attack=self.attack, eps=self.eps * scale, norm=self.norm, steps=self.steps,
            step_size=None if self.step_size is None else self.step_size * scale, random_start=self.random_start,
            mix=self.mix, bounds=bounds,
        )


class GradientNormTraining(Section):
    kind: Literal["gradient_norm"] = "gradient_norm"
    eps: NonNegativeFloat = Field(0.1, description="Penalty weight = radius in pixel units")
    q: Literal[1, 2] = Field(2, description="1: J^1 (l_inf attacks), 2: J^2 (l_2 attacks)")

    def build(self, scale: float, bounds: tuple[float, float]) -> Objective:
        # l(x + eps a) ~ l(x) + eps ||grad_x l||_*, with eps in input units.
        return GradientNormObjective(eps=self.eps * scale, q=self.q)


class TulipTraining(Section):
    kind: Literal["tulip"] = "tulip"
    eps: NonNegativeFloat = 0.1
    lam: NonNegativeFloat = Field(0.1, description="Weight of the minibatch max of ||grad_x l||_2 (pixel units)")

    def build(self, scale: float, bounds: tuple[float, float]) -> Objective:
        return TulipObjective(eps=self.eps * scale, lam=self.lam * scale)


TrainingObjective = Annotated[Union[AdversarialTraining, GradientNormTraining, TulipTraining], Field(discriminator="kind")]


CW_OPTIONS = ("initial_const", "binary_search_steps", "kappa", "lr")


class EvalAttack(Section):
    """One attack of ``robustness.evaluation.attacks``; ``cw`` also takes Carlini and Wagner's
    ``initial_const``, ``binary_search_steps``, ``kappa`` and ``lr`` (their defaults 1e-3, 9, 0, 0.01)."""

    attack: Literal["fgsm", "fgm", "pgd", "ifgsm", "cw"] = "pgd"
    norm: Literal["linf", "l2"] = "linf"
    eps: list[NonNegativeFloat] = Field(default_factory=lambda: [0.1], description="Radii in pixel units")
    steps: PositiveInt | None = Field(None, description="Iterations: default 20, for cw 100 Adam steps per constant")
    random_start: bool = False
    initial_const: PositiveFloat | None = Field(None, description="cw: first constant c of the binary search")
    binary_search_steps: PositiveInt | None = Field(None, description="cw: constants tried per sample")
    kappa: NonNegativeFloat | None = Field(None, description="cw: confidence margin")
    lr: PositiveFloat | None = Field(None, description="cw: Adam step size")

    @model_validator(mode="after")
    def _cw_options_only_for_cw(self) -> "EvalAttack":
        given = [k for k in CW_OPTIONS if getattr(self, k) is not None]
        if given and self.attack != "cw":
            raise PydanticCustomError("fedsim", "robustness.evaluation.attacks: {keys} apply to attack cw only, not {attack}",
                                      {"keys": ", ".join(given), "attack": self.attack})
        return self

    def spec(self) -> AttackSpec:
        steps = self.steps if self.steps is not None else (100 if self.attack == "cw" else 20)
        cw = {f"cw_{k}": getattr(self, k) for k in CW_OPTIONS if getattr(self, k) is not None}
        return AttackSpec(self.attack, self.norm, steps, self.random_start, **cw)


Norm = Literal["linf", "l2"]


def _default_norms() -> list[Norm]:
    return ["l2"]


def _default_distance_max() -> dict[Norm, float]:
    return {"l2": 10.0, "linf": 0.5}


class RobustEvaluationConfig(Section):
    """``robustness.evaluation``: robust metrics on evaluation rounds and in summary.json."""

    attacks: list[EvalAttack] = Field(default_factory=lambda: [EvalAttack()])
    distance_norms: list[Norm] = Field(default_factory=_default_norms, description="Median minimal distance per norm")
    samples: PositiveInt = Field(500, description="Test samples attacked (the first N)")
    bisection_steps: PositiveInt = 8
    distance_max: dict[Norm, PositiveFloat] = Field(
        default_factory=_default_distance_max,
        description="Upper end of the bisection per norm (pixel units); resolution is distance_max / 2^bisection_steps",
    )
    per_round: bool = Field(False, description="Also add robust accuracy of the first attack to every evaluated round")

    def attack_list(self) -> list[tuple[AttackSpec, list[float]]]:
        return [(a.spec(), list(a.eps)) for a in self.attacks]


class ByzantineConfig(Section):
    """``robustness.byzantine``: a seeded set of malicious clients and what they send."""

    fraction: float = Field(0.0, ge=0, lt=1, description="Fraction of all clients that are Byzantine")
    attack: Literal[tuple([*BYZANTINE_ATTACKS, "label_flip"])] = "sign_flip"  # type: ignore[valid-type]  # the allowed names come from the registry
    scale: float | None = Field(None, description="sign_flip / scaling factor")
    sigma: PositiveFloat | None = Field(None, description="gaussian: noise std")
    z: float | None = Field(None, description="alie: z (default from n and f, Baruch et al. eq. 1)")
    epsilon: float | None = Field(None, description="ipm: epsilon")

    def options(self) -> dict[str, Any]:
        names = {"sign_flip": ("scale",), "scaling": ("scale",), "gaussian": ("sigma",), "alie": ("z",), "ipm": ("epsilon",)}
        return {k: getattr(self, k) for k in names.get(self.attack, ()) if getattr(self, k) is not None}


class RobustnessConfig(Section):
    """``robustness:`` training objective, robust evaluation and Byzantine clients (all optional)."""

    training: TrainingObjective | None = None
    evaluation: RobustEvaluationConfig | None = None
    byzantine: ByzantineConfig | None = None


def attach(algorithm: Any, section: RobustnessConfig | None, data: Any, seed: int) -> None:
    """Give a built algorithm the section's training objective and Byzantine clients.

    The objective goes into the algorithm's client task (every FedAvg-family and decentralized
    rule keeps it as ``algorithm.task``); Byzantine clients go to the FedAvg family's
    ``byzantine`` slot. Label flipping poisons ``data.y_train`` in place, once, here.
    """
    from fedsim.algorithms.fedavg import FedAvg
    from fedsim.client.task import ClientTask
    from fedsim.errors import FedsimError
    from fedsim.robustness.byzantine import ByzantineClients, byzantine_clients, poison_labels
    from fedsim.robustness.evaluation import data_range

    if section is None:
        return
    name = type(algorithm).__name__
    if section.training is not None:
        task = getattr(algorithm, "task", None)
        if not isinstance(task, ClientTask) or not task.vectorizable:
            raise FedsimError(f"robustness.training: needs an algorithm whose clients run local SGD (fedavg family, dp_fed_ls, "
                              f"d-psgd, choco); {name} has no such client task")
        lo, hi = data_range(data.x_train)
        algorithm.task = task.with_objective(section.training.build(hi - lo, (lo, hi)))
    byz = section.byzantine
    if byz is not None and byz.fraction > 0:
        from fedsim.algorithms.choco import ChocoSGD
        from fedsim.algorithms.dpsgd import DPSGD

        if not isinstance(algorithm, (FedAvg, DPSGD, ChocoSGD)):
            raise FedsimError(f"robustness.byzantine: supported for the fedavg family, dpsgd and choco, not {name}")
        count = algorithm.nodes if isinstance(algorithm, (DPSGD, ChocoSGD)) else data.num_clients
        clients = byzantine_clients(count, byz.fraction, seed)
        algorithm.byzantine = ByzantineClients(tuple(clients), byz.attack, byz.options(), seed)
        if byz.attack == "label_flip":
            data.y_train = poison_labels(data.y_train, data.client_indices, clients, int(data.y_train.max()) + 1)
