"""``fedsim privacy``: epsilon of a planned run, the noise for a target epsilon, audits of a run."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Optional

import typer

from fedsim.privacy.accountant import sampling_note
from fedsim.privacy.analysis import check_accountant, compute_epsilon
from fedsim.privacy.calibration import calibrate_noise_multiplier

app = typer.Typer(help="Privacy accounting (Opacus RDP/PRV) and audits.", no_args_is_help=True)

# Options shared by both commands (typer accepts one OptionInfo as the default of several).
_SAMPLE_RATE = typer.Option(..., "--sample-rate", help="sampling rate q per step")
_STEPS = typer.Option(..., "--steps", help="number of steps (rounds for user-level DP)")
_DELTA = typer.Option(..., "--delta", help="target delta in (0, 1)")
_ACCOUNTANT = typer.Option("rdp", "--accountant", help="rdp (default) or prv")
_SAMPLING = typer.Option("poisson", "--sampling",
                         help="poisson (accounted exactly) or uniform without replacement (labelled approximate)")
_JSON = typer.Option(False, "--json", help="print one JSON object")


def _emit(record: dict, as_json: bool, line: str) -> None:
    if as_json:
        typer.echo(json.dumps(record))
    else:
        typer.echo(line)
        typer.echo(f"  {record['note']}")


@app.command()
def epsilon(
    noise_multiplier: float = typer.Option(..., "--noise-multiplier", help="noise std / clip norm (z)"),
    sample_rate: float = _SAMPLE_RATE,
    steps: int = _STEPS,
    delta: float = _DELTA,
    accountant: str = _ACCOUNTANT,
    sampling: str = _SAMPLING,
    as_json: bool = _JSON,
) -> None:
    """Epsilon spent by STEPS subsampled Gaussian steps."""
    check_accountant(accountant)
    note = sampling_note(sampling, "user")
    eps = compute_epsilon(noise_multiplier=noise_multiplier, sample_rate=sample_rate, steps=steps, delta=delta,
                          accountant=accountant)
    record = {"epsilon": eps if math.isfinite(eps) else None, "delta": delta, "noise_multiplier": noise_multiplier,
              "sample_rate": sample_rate, "steps": steps, "accountant": accountant, "sampling": sampling,
              "exact": sampling == "poisson", "note": note}
    _emit(record, as_json, f"epsilon = {eps:.6g} at delta = {delta:g} ({accountant}, z = {noise_multiplier:g}, "
                           f"q = {sample_rate:g}, steps = {steps})")


@app.command()
def noise(
    target_epsilon: float = typer.Option(..., "--target-epsilon", help="epsilon to reach after STEPS steps"),
    sample_rate: float = _SAMPLE_RATE,
    steps: int = _STEPS,
    delta: float = _DELTA,
    accountant: str = _ACCOUNTANT,
    sampling: str = _SAMPLING,
    as_json: bool = _JSON,
) -> None:
    """Smallest noise multiplier whose epsilon after STEPS steps stays <= the target (Opacus)."""
    note = sampling_note(sampling, "user")
    z = calibrate_noise_multiplier(target_epsilon=target_epsilon, delta=delta, sample_rate=sample_rate, steps=steps,
                                   accountant=accountant)
    eps = compute_epsilon(noise_multiplier=z, sample_rate=sample_rate, steps=steps, delta=delta, accountant=accountant)
    record = {"noise_multiplier": z, "epsilon": eps, "target_epsilon": target_epsilon, "delta": delta,
              "sample_rate": sample_rate, "steps": steps, "accountant": accountant, "sampling": sampling,
              "exact": sampling == "poisson", "note": note}
    _emit(record, as_json, f"noise multiplier = {z:.6g} gives epsilon = {eps:.6g} <= {target_epsilon:g} at "
                           f"delta = {delta:g} ({accountant}, q = {sample_rate:g}, steps = {steps})")


@app.command()
def audit(
    run_dir: Path = typer.Argument(..., help="Run folder of a private run (summary.json, config.yaml, params.pt)."),
    canaries: Optional[int] = typer.Option(None, "--canaries", help="Canaries in the one-run audit (default: 1000, fewer when delta is large)"),
    confidence: float = typer.Option(0.95, "--confidence", help="Confidence of the empirical lower bound"),
    members: int = typer.Option(5000, "--members", help="Training (member) and test (non-member) samples for membership inference"),
    as_json: bool = _JSON,
) -> None:
    """Recomputed epsilon, loss-threshold membership inference and an empirical epsilon lower bound."""
    from fedsim.privacy.run_audit import audit_run

    report = audit_run(run_dir, canaries=canaries, confidence=confidence, members=members)
    if as_json:
        typer.echo(json.dumps(report))
        return
    acc = report["accounted"]
    typer.echo(f"accounted epsilon  {acc['epsilon_ledger']:.4g} (ledger), {acc['epsilon_recomputed']:.4g} "
               f"(recomputed by Opacus' {acc['accountant']} accountant) at delta = {acc['delta']:.3g}; {acc['note']}")
    mi = report["membership_inference"]
    typer.echo(f"membership inference  AUC {mi['auc']:.4f}, best accuracy {mi['accuracy']:.4f} "
               f"({mi['members']} train members vs {mi['members']} test non-members, loss threshold)")
    low = report["empirical_lower_bound"]
    typer.echo(f"empirical lower bound  epsilon >= {low['epsilon']:.4g} with confidence {low['confidence']:.0%} "
               f"({low['correct']}/{low['guesses']} correct guesses on {low['canaries']} canaries); "
               f"{'below' if low['epsilon'] <= acc['epsilon_ledger'] else 'ABOVE'} the accounted epsilon")
