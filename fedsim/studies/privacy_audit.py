"""Audit a finished private run: recompute its epsilon, attack its model, bound epsilon from below.

Reads the run folder written by :mod:`fedsim.experiment` (``summary.json`` with the privacy
ledger, ``config.yaml``, ``params.pt``). The data and model are rebuilt from the config, so a
run made with a custom model or partition through the Python API cannot be audited here. The
attacks and the lower bound themselves are pure functions in :mod:`fedsim.privacy.audit`; this
module only reads the run folder and wires them up (``fedsim privacy audit``).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch

from fedsim.config.schema import ExperimentConfig
from fedsim.errors import FedsimError
from fedsim.experiment import resolve_config
from fedsim.models.functional import FunctionalModel
from fedsim.privacy.audit import loss_threshold_attack, user_level_canary_audit
from fedsim.seeding import torch_generator

__all__ = ["audit_run", "default_canaries"]


def default_canaries(delta: float) -> int:
    """1000 canaries, fewer when the additive ``2 m delta`` term of Theorem 3.1 in Steinke, Nasr and Jagielski,
    "Privacy Auditing with One (1) Training Run" (NeurIPS 2023) would exceed 0.01 (at least 50)."""
    return int(min(1000, max(50, 0.01 / (2 * delta))))


def _read(run_dir: Path) -> tuple[dict[str, Any], ExperimentConfig, torch.Tensor]:
    missing = [n for n in ("summary.json", "config.yaml", "params.pt") if not (run_dir / n).is_file()]
    if missing:
        raise FedsimError(f"{run_dir}: not a private run folder (missing {', '.join(missing)})")
    summary = json.loads((run_dir / "summary.json").read_text())
    if "privacy" not in summary:
        raise FedsimError(f"{run_dir}/summary.json: no privacy ledger (run with a privacy: section)")
    return summary, resolve_config(run_dir / "config.yaml"), torch.load(run_dir / "params.pt")


def _membership(cfg: ExperimentConfig, params: torch.Tensor, members: int, seed: int) -> dict[str, Any]:
    data = cfg.data.build(cfg.seed)
    model = FunctionalModel(cfg.model.build(cfg.seed, data))
    train_idx = torch.cat(data.client_indices)
    gen = torch_generator(seed, "audit_members")
    k = min(members, len(train_idx), len(data.y_test))
    mem = train_idx[torch.randperm(len(train_idx), generator=gen)[:k]]
    non = torch.randperm(len(data.y_test), generator=gen)[:k]
    with torch.no_grad():
        loss_mem = torch.nn.functional.cross_entropy(model.logits(params, data.x_train[mem]), data.y_train[mem], reduction="none")
        loss_non = torch.nn.functional.cross_entropy(model.logits(params, data.x_test[non]), data.y_test[non], reduction="none")
    res = loss_threshold_attack(loss_mem, loss_non)
    return {"auc": res.auc, "accuracy": res.accuracy, "threshold": res.threshold, "members": k}


def _recompute(led: dict[str, Any], history: list[tuple]) -> float:
    """The ledger's epsilon recomputed off fedsim's path, by the library with its default settings."""
    if led.get("sampling") == "uniform":
        import dp_accounting
        from dp_accounting.rdp import RdpAccountant

        acc = RdpAccountant(neighboring_relation=dp_accounting.NeighboringRelation.REPLACE_ONE)
        n = int(led["population"])
        for z, q, t in history:
            # Replace-one sensitivity of a sum clipped to G is 2G: the Gaussian has multiplier z / 2.
            event = dp_accounting.SampledWithoutReplacementDpEvent(n, round(float(q) * n),
                                                                   dp_accounting.GaussianDpEvent(float(z) / 2))
            acc.compose(dp_accounting.SelfComposedDpEvent(event, int(t)))
        return float(acc.get_epsilon(led["delta"]))
    from opacus.accountants import create_accountant

    opacus = create_accountant(led["accountant"])
    opacus.history = [(float(z), float(q), int(t)) for z, q, t in history]
    return float(opacus.get_epsilon(delta=led["delta"]))


def audit_run(run_dir: str | Path, *, canaries: int | None = None, confidence: float = 0.95,
              members: int = 5000) -> dict[str, Any]:
    """The three audit numbers side by side, as a JSON-ready dict."""
    run_dir = Path(run_dir)
    summary, cfg, params = _read(run_dir)
    led = summary["privacy"]
    history = [tuple(h) for h in led["history"]]
    private = bool(history) and all(z > 0 for z, _, _ in history)
    recomputed = _recompute(led, history) if private else math.inf
    accounted = {"epsilon_ledger": led["epsilon"] if led["epsilon"] is not None else math.inf,
                 "epsilon_recomputed": recomputed, "delta": led["delta"], "accountant": led["accountant"],
                 "analysis": led.get("analysis"), "sampling": led.get("sampling"), "adjacency": led.get("adjacency"),
                 "steps": led["steps"], "note": led["note"]}
    if len({(z, q) for z, q, _ in history}) != 1:
        raise FedsimError(f"{run_dir}: the canary audit needs one (noise multiplier, sample rate) for the whole run")
    z, q, steps = history[0][0], history[0][1], led["steps"]
    m = canaries if canaries is not None else default_canaries(led["delta"])
    canary = user_level_canary_audit(noise_multiplier=z, sample_rate=q, rounds=steps, clip_norm=led["clip_norm"],
                                     dim=params.numel(), delta=led["delta"], canaries=m, confidence=confidence,
                                     generator=torch_generator(cfg.seed, "audit_canaries"))
    return {
        "run_dir": str(run_dir),
        "accounted": accounted,
        "membership_inference": _membership(cfg, params, members, cfg.seed),
        "empirical_lower_bound": {"epsilon": canary.epsilon_lower_bound, "confidence": canary.confidence,
                                  "canaries": canary.canaries, "guesses": canary.guesses, "correct": canary.correct,
                                  "method": "one-run audit (Steinke, Nasr, Jagielski 2023) with canary "
                                            f"{'clients' if led['unit'] == 'user' else 'examples'} on the released noisy sums"},
    }
