"""``fedsim study robustness``: final accuracy of each aggregator under each Byzantine attack and fraction.

The runs are one :func:`fedsim.studies.sweep.run_sweep` (its ``sweep.json``, ``sweep.csv``,
``table.md`` and ``trials/`` land in the study folder too): the aggregators times one zip group of
``(attack, fraction, assumed fraction)`` cells, every cell once per seed. A fraction of 0 has no
attacker, so it is run once per aggregator (as attack ``none``) and shared by every attack's
panel. The study writes ``study.csv`` (one row per run), ``study.md`` (final accuracy, mean +-
sample std over seeds) and ``accuracy_vs_fraction.png`` (one panel per attack, one line per
aggregator). Every cell's config is validated before the first run; a cell whose rule refuses
its cohort (Krum needs n > 2f + 2, Bulyan n >= 4f + 3) is reported as refused, not dropped.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from fedsim.config.loading import apply_overrides
from fedsim.config.sweep import SweepConfig
from fedsim.errors import FedsimError
from fedsim.output import write_json_atomic
from fedsim.robustness.aggregators import AGGREGATORS
from fedsim.robustness.byzantine import BYZANTINE_ATTACKS
from fedsim.studies.sweep import load_base, mean_std, run_sweep

__all__ = ["run_robustness_study", "plot_accuracy_vs_fraction"]

ATTACK_KEY, FRACTION_KEY, ASSUMED_KEY, AGG_KEY = (
    "robustness.byzantine.attack", "robustness.byzantine.fraction", "algorithm.aggregator.assumed_fraction", "algorithm.aggregator.kind",
)


def _cells(attacks: Sequence[str], fractions: Sequence[float], assumed: float | None) -> dict[str, list[Any]]:
    attack_col, frac_col, assumed_col = [], [], []
    if 0.0 in fractions or "none" in attacks:
        attack_col.append("sign_flip")  # fraction 0: no Byzantine client, whatever the attack
        frac_col.append(0.0)
        assumed_col.append(0.0 if assumed is None else assumed)
    for attack in attacks:
        if attack == "none":
            continue
        for f in fractions:
            if f > 0:
                attack_col.append(attack)
                frac_col.append(f)
                assumed_col.append(f if assumed is None else assumed)
    return {ATTACK_KEY: attack_col, FRACTION_KEY: frac_col, ASSUMED_KEY: assumed_col}


def _write_csv(rows: Sequence[dict[str, Any]], path: Path) -> None:
    keys = ["aggregator", "attack", "fraction", "assumed_fraction", "seed", "status", "final_accuracy", "best_accuracy", "wall_s", "error"]
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(keys)
        for r in rows:
            writer.writerow([r.get(k) for k in keys])


def _table(rows: Sequence[dict[str, Any]], aggregators: Sequence[str], panels: Sequence[str], fractions: Sequence[float]) -> tuple[list[dict[str, Any]], str]:
    stats, lines = [], []
    header = ["aggregator", *[f"{a} f={f:g}" for a in panels for f in fractions]]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "---|" * len(header))
    for agg in aggregators:
        cells = [agg]
        for attack in panels:
            for f in fractions:
                members = [r for r in rows if r["aggregator"] == agg and r["fraction"] == f and (f == 0 or r["attack"] == attack)]
                mean, std, n = mean_std([r["final_accuracy"] for r in members if r["status"] in ("completed", "stopped")])
                refused = [r for r in members if r["status"] == "failed"]
                stats.append({"aggregator": agg, "attack": attack, "fraction": f, "mean": mean, "std": std, "n": n, "refused": len(refused)})
                cells.append("refused" if mean is None and refused else "-" if mean is None else
                             f"{mean:.4f}" + (f" ± {std:.4f}" if std is not None else ""))
        lines.append("| " + " | ".join(cells) + " |")
    return stats, "\n".join(lines) + "\n"


def plot_accuracy_vs_fraction(stats: Sequence[dict[str, Any]], panels: Sequence[str], aggregators: Sequence[str], path: Path) -> Path:
    """One panel per attack, one line per aggregator: final accuracy (mean +- std over seeds) vs fraction."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.4), squeeze=False, sharey=True)
    for ax, attack in zip(axes[0], panels):
        for agg in aggregators:
            pts = [s for s in stats if s["aggregator"] == agg and s["attack"] == attack and s["mean"] is not None]
            if not pts:
                continue
            xs = [p["fraction"] for p in pts]
            ys = [p["mean"] for p in pts]
            errs = [p["std"] or 0.0 for p in pts]
            ax.errorbar(xs, ys, yerr=errs, marker="o", capsize=3, label=agg)
        ax.set_title(f"attack: {attack}")
        ax.set_xlabel("Byzantine fraction")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("final test accuracy")
    axes[0][-1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def run_robustness_study(
    config: str | Path | dict[str, Any],
    aggregators: Sequence[str],
    attacks: Sequence[str],
    fractions: Sequence[float],
    *,
    out: str | Path,
    seeds: Sequence[int] | None = None,
    assumed_fraction: float | None = None,
    overrides: Iterable[str] = (),
    backend: str = "inline",
    parallel: int | None = None,
    progress: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """Run ``aggregators x (attack, fraction)`` (x seeds) and write the study files into ``out``.

    ``assumed_fraction`` is the fraction every robust rule is told to tolerate; None (default)
    tells it the cell's true fraction (the oracle setting of most papers).
    """
    unknown = [a for a in aggregators if a not in AGGREGATORS]
    if unknown or not aggregators:
        raise FedsimError(f"--aggregators: unknown {', '.join(unknown) or '(none given)'} (allowed: {', '.join(AGGREGATORS)})")
    allowed_attacks = ["none", *BYZANTINE_ATTACKS, "label_flip"]
    bad = [a for a in attacks if a not in allowed_attacks]
    if bad or not attacks:
        raise FedsimError(f"--attacks: unknown {', '.join(bad) or '(none given)'} (allowed: {', '.join(allowed_attacks)})")
    if not fractions or any(not 0 <= f < 1 for f in fractions):
        raise FedsimError(f"--fractions: each must be in [0, 1), got {list(fractions)}")
    base, _ = load_base(config)
    base = apply_overrides(base, [*overrides, "output.plot=false"])
    spec = SweepConfig(grid={AGG_KEY: list(aggregators)}, zip=[_cells(attacks, fractions, assumed_fraction)],
                       seeds=list(seeds) if seeds else None)
    result = run_sweep(base, spec, out=out, backend=backend, parallel=parallel, plot=False,
                       source=str(config) if isinstance(config, (str, Path)) else "config")
    rows = []
    for o in result.outcomes:
        p = o.trial.point
        frac = float(p[FRACTION_KEY])
        rows.append({
            "aggregator": p[AGG_KEY], "attack": "none" if frac == 0 else p[ATTACK_KEY], "fraction": frac,
            "assumed_fraction": float(p[ASSUMED_KEY]), "seed": o.trial.seed, "status": o.status,
            "final_accuracy": o.summary.get("final_accuracy"), "best_accuracy": o.summary.get("best_accuracy"),
            "wall_s": o.summary.get("wall_s"), "error": (o.error or "").strip().splitlines()[-1] if o.error else None,
        })
        if progress:
            progress(rows[-1])
    out = Path(out)
    panels = [a for a in attacks if a != "none"] or ["none"]
    fr = sorted({0.0, *fractions}) if panels != ["none"] else [0.0]
    stats, markdown = _table(rows, aggregators, panels, fr)
    write_json_atomic(out / "study.json", {"runs": rows, "cells": stats})
    _write_csv(rows, out / "study.csv")
    (out / "study.md").write_text(markdown)
    plot_accuracy_vs_fraction(stats, panels, aggregators, out / "accuracy_vs_fraction.png")
    return rows
