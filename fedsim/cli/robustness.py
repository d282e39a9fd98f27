"""``fedsim robustness eval RUN_DIR``: clean and robust accuracy, and the median minimal adversarial
distance, of a finished run's model (its ``params.pt``)."""

from __future__ import annotations

from pathlib import Path

import typer

from fedsim.errors import FedsimError

__all__ = ["app"]

app = typer.Typer(help="Adversarial robustness of trained models.", no_args_is_help=True)


@app.callback()
def _group() -> None:
    """Adversarial robustness of trained models."""


def _floats(value: str, what: str) -> list[float]:
    try:
        items = [float(v) for v in value.split(",") if v.strip()]
    except ValueError:
        raise FedsimError(f"--{what}: expected comma-separated numbers, got {value!r}") from None
    if not items or any(v < 0 for v in items):
        raise FedsimError(f"--{what}: expected non-negative numbers, got {value!r}")
    return items


@app.command("eval")
def eval_(
    run_dir: Path = typer.Argument(..., help="A run folder with config.yaml and params.pt (runs with a robustness: or privacy: section)."),
    attack: str = typer.Option("pgd", help="fgsm, fgm, pgd, ifgsm or cw"),
    norm: str = typer.Option("linf", help="linf or l2 (pgd)"),
    eps: str = typer.Option("0.1", help="Comma-separated radii in pixel units (fractions of the data range)"),
    steps: int | None = typer.Option(None, help="Attack iterations (default 20; cw: 100 Adam steps per constant)"),
    samples: int = typer.Option(500, help="Test samples attacked (the first N)"),
    distance: str = typer.Option("l2", help="Comma-separated norms for the median minimal distance ('' for none)"),
    bisection_steps: int = typer.Option(8, help="Bisection steps of the minimal distance"),
    cw_initial_const: float | None = typer.Option(None, help="cw: first constant c of the binary search (default 1e-3)"),
    cw_binary_search_steps: int | None = typer.Option(None, help="cw: constants tried per sample (default 9)"),
    cw_kappa: float | None = typer.Option(None, help="cw: confidence margin kappa (default 0)"),
    cw_lr: float | None = typer.Option(None, help="cw: Adam step size (default 0.01)"),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object"),
) -> None:
    """Evaluate RUN_DIR's final model under ATTACK at each EPS, and its median minimal distance."""
    import torch

    from fedsim.config.loading import read_yaml
    from fedsim.config.robustness import EvalAttack, RobustEvaluationConfig
    from fedsim.experiment import Experiment, resolve_config

    params_path, config_path = run_dir / "params.pt", run_dir / "config.yaml"
    for path in (config_path, params_path):
        if not path.is_file():
            raise FedsimError(f"{path}: not found (robustness eval needs a finished run with a robustness: or privacy: section)")
    norms = [n.strip() for n in distance.split(",") if n.strip()]
    for n in [norm, *norms]:
        if n not in ("linf", "l2"):
            raise FedsimError(f"--norm/--distance: '{n}' is not a norm (allowed: linf, l2)")
    if attack not in ("fgsm", "fgm", "pgd", "ifgsm", "cw"):
        raise FedsimError(f"--attack: '{attack}' is unknown (allowed: fgsm, fgm, pgd, ifgsm, cw)")
    cw = {k: v for k, v in (("initial_const", cw_initial_const), ("binary_search_steps", cw_binary_search_steps),
                            ("kappa", cw_kappa), ("lr", cw_lr)) if v is not None}
    if cw and attack != "cw":
        raise FedsimError(f"--cw-{next(iter(cw)).replace('_', '-')}: applies to --attack cw only, not {attack}")
    if steps is not None and steps < 1 or any(v <= 0 for k, v in cw.items() if k != "kappa") or cw.get("kappa", 0) < 0:
        raise FedsimError("--steps, --cw-initial-const, --cw-binary-search-steps, --cw-lr: must be > 0; --cw-kappa: >= 0")
    section = RobustEvaluationConfig(
        attacks=[EvalAttack(attack=attack, norm=norm, eps=_floats(eps, "eps"), steps=steps, **cw)],
        distance_norms=norms, samples=samples, bisection_steps=bisection_steps,
    )
    raw = read_yaml(config_path)
    raw["runtime"] = {"kind": "serial", "device": "cpu"}  # evaluation needs no Ray cluster nor GPU
    cfg = resolve_config(raw)
    experiment = Experiment(cfg)
    params = torch.load(params_path, map_location="cpu", weights_only=True)
    if params.shape != experiment.initial_params.shape:
        raise FedsimError(f"{params_path}: {tuple(params.shape)} parameters, the run's model has {tuple(experiment.initial_params.shape)}")
    report = experiment.evaluate_robust(params, section)
    if as_json:
        from fedsim.output import strict_dumps  # non-finite floats as null: strict JSON
        typer.echo(strict_dumps({"run_dir": str(run_dir), "samples": samples, **report}))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"robustness of {run_dir} ({samples} test samples; radii in pixel units)")
    table.add_column("metric")
    table.add_column("value")
    for key, value in report.items():
        table.add_row(key, f"{value:.4f}")
    Console().print(table)
