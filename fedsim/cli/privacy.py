"""``fedsim privacy``: epsilon of a planned run, the noise for a target epsilon, audits of a run."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Optional

import typer

from fedsim.errors import FedsimError

# fedsim.privacy (and through it torch) is imported inside the commands, so that mounting this
# sub-app does not cost every other subcommand a torch import at start-up.

app = typer.Typer(help="Privacy accounting (Opacus for Poisson, dp-accounting for fixed-size cohorts) and audits.",
                  no_args_is_help=True)

# Options shared by both commands (typer accepts one OptionInfo as the default of several).
_SAMPLE_RATE = typer.Option(None, "--sample-rate", help="sampling rate q per step (uniform: cohort round(qN)); full: 1")
_STEPS = typer.Option(..., "--steps", help="number of steps (rounds for user-level DP)")
_DELTA = typer.Option(..., "--delta", help="target delta in (0, 1)")
_ACCOUNTANT = typer.Option("rdp", "--accountant", help="rdp (default) or prv (Poisson and full only)")
_SAMPLING = typer.Option("poisson", "--sampling",
                         help="poisson (rate q, add/remove-one), uniform (round(qN) of N without replacement, "
                              "replace-one) or full (q = 1)")
_POPULATION = typer.Option(None, "--population", help="N, the privacy units (clients K or examples n); uniform only")
_JSON = typer.Option(False, "--json", help="print one JSON object")


def _scheme(sampling: str, sample_rate: Optional[float], population: Optional[int],
            accountant: str) -> tuple[float, dict]:
    """The sample rate to account and the record fields that say which analysis gave the number."""
    from fedsim.privacy.accountant import accountant_name, is_exact
    from fedsim.privacy.analysis import ADJACENCY, check_accountant, check_sampling, cohort_size

    check_accountant(accountant)
    check_sampling(sampling)
    if sampling == "full":
        if sample_rate not in (None, 1.0):
            raise FedsimError(f"--sampling full means --sample-rate 1, got {sample_rate}")
        sample_rate = 1.0
    elif sample_rate is None:
        raise FedsimError(f"--sampling {sampling} needs --sample-rate q in (0, 1]")
    fields: dict = {"sampling": sampling, "adjacency": ADJACENCY[sampling],
                    "analysis": accountant_name(sampling, accountant), "exact": is_exact(sampling)}  # type: ignore[arg-type]  # typer passes the --sampling choice as a str
    if sampling == "uniform":
        fields.update(population=population, cohort_size=cohort_size(sample_rate, population))
    elif population is not None:
        raise FedsimError(f"--population is used by --sampling uniform only, got it with --sampling {sampling}")
    return float(sample_rate), fields


def _emit(record: dict, as_json: bool, line: str) -> None:
    if as_json:
        from fedsim.output import strict_dumps  # non-finite floats as null: strict JSON
        typer.echo(strict_dumps(record))
    else:
        typer.echo(line)
        typer.echo(f"  {record['note']}")


@app.command()
def epsilon(
    noise_multiplier: float = typer.Option(..., "--noise-multiplier", help="noise std / clip norm (z)"),
    sample_rate: Optional[float] = _SAMPLE_RATE,
    steps: int = _STEPS,
    delta: float = _DELTA,
    accountant: str = _ACCOUNTANT,
    sampling: str = _SAMPLING,
    population: Optional[int] = _POPULATION,
    as_json: bool = _JSON,
) -> None:
    """Epsilon spent by STEPS subsampled Gaussian steps."""
    from fedsim.privacy.accountant import sampling_note
    from fedsim.privacy.analysis import compute_epsilon

    q, fields = _scheme(sampling, sample_rate, population, accountant)
    eps = compute_epsilon(noise_multiplier=noise_multiplier, sample_rate=q, steps=steps, delta=delta,
                          accountant=accountant, sampling=sampling, population=population)
    record = {"epsilon": eps if math.isfinite(eps) else None, "delta": delta, "noise_multiplier": noise_multiplier,
              "sample_rate": q, "steps": steps, "accountant": accountant, **fields,
              "note": sampling_note(sampling, "user")}  # type: ignore[arg-type]  # typer passes the --sampling choice as a str
    _emit(record, as_json, f"epsilon = {eps:.6g} at delta = {delta:g} ({fields['analysis']}, {sampling} sampling, "
                           f"z = {noise_multiplier:g}, q = {q:g}, steps = {steps})")


@app.command()
def noise(
    target_epsilon: float = typer.Option(..., "--target-epsilon", help="epsilon to reach after STEPS steps"),
    sample_rate: Optional[float] = _SAMPLE_RATE,
    steps: int = _STEPS,
    delta: float = _DELTA,
    accountant: str = _ACCOUNTANT,
    sampling: str = _SAMPLING,
    population: Optional[int] = _POPULATION,
    as_json: bool = _JSON,
) -> None:
    """Smallest noise multiplier whose epsilon after STEPS steps stays <= the target (same analysis as epsilon)."""
    from fedsim.privacy.accountant import sampling_note
    from fedsim.privacy.analysis import compute_epsilon
    from fedsim.privacy.calibration import calibrate_noise_multiplier

    q, fields = _scheme(sampling, sample_rate, population, accountant)
    z = calibrate_noise_multiplier(target_epsilon=target_epsilon, delta=delta, sample_rate=q, steps=steps,
                                   accountant=accountant, sampling=sampling, population=population)
    eps = compute_epsilon(noise_multiplier=z, sample_rate=q, steps=steps, delta=delta, accountant=accountant,
                          sampling=sampling, population=population)
    record = {"noise_multiplier": z, "epsilon": eps, "target_epsilon": target_epsilon, "delta": delta,
              "sample_rate": q, "steps": steps, "accountant": accountant, **fields,
              "note": sampling_note(sampling, "user")}  # type: ignore[arg-type]  # typer passes the --sampling choice as a str
    _emit(record, as_json, f"noise multiplier = {z:.6g} gives epsilon = {eps:.6g} <= {target_epsilon:g} at "
                           f"delta = {delta:g} ({fields['analysis']}, {sampling} sampling, q = {q:g}, steps = {steps})")


@app.command()
def audit(
    run_dir: Path = typer.Argument(..., help="Run folder of a private run (summary.json, config.yaml, params.pt)."),
    canaries: Optional[int] = typer.Option(None, "--canaries", help="Canaries in the one-run audit (default: 1000, fewer when delta is large)"),
    confidence: float = typer.Option(0.95, "--confidence", help="Confidence of the empirical lower bound"),
    members: int = typer.Option(5000, "--members", help="Training (member) and test (non-member) samples for membership inference"),
    as_json: bool = _JSON,
) -> None:
    """Recomputed epsilon, loss-threshold membership inference and an empirical epsilon lower bound."""
    from fedsim.studies.privacy_audit import audit_run

    report = audit_run(run_dir, canaries=canaries, confidence=confidence, members=members)
    if as_json:
        from fedsim.output import strict_dumps  # non-finite floats as null: strict JSON
        typer.echo(strict_dumps(report))
        return
    acc = report["accounted"]
    typer.echo(f"accounted epsilon  {acc['epsilon_ledger']:.4g} (ledger), {acc['epsilon_recomputed']:.4g} "
               f"(recomputed by {acc.get('analysis') or 'opacus-' + acc['accountant']}) at delta = {acc['delta']:.3g}; {acc['note']}")
    mi = report["membership_inference"]
    typer.echo(f"membership inference  AUC {mi['auc']:.4f}, best accuracy {mi['accuracy']:.4f} "
               f"({mi['members']} train members vs {mi['members']} test non-members, loss threshold)")
    low = report["empirical_lower_bound"]
    typer.echo(f"empirical lower bound  epsilon >= {low['epsilon']:.4g} with confidence {low['confidence']:.0%} "
               f"({low['correct']}/{low['guesses']} correct guesses on {low['canaries']} canaries); "
               f"{'below' if low['epsilon'] <= acc['epsilon_ledger'] else 'ABOVE'} the accounted epsilon")
