"""The topology study: one decentralized experiment per (topology, node count), compared by spectral gap.

The runs are one sweep (:mod:`fedsim.studies.sweep`) over ``topology.spec x data.num_clients``;
this module adds the study's own rows and plots. For each pair the study runs the config with
``topology.spec`` and ``data.num_clients`` replaced, and records the spectral gap of the mixing matrix, the consensus distance of every
round, the final accuracies and the rounds until the nodes' mean test accuracy first reaches a
target. It writes ``study.json`` (one object per run, per-round series as lists), ``study.csv``
(one row per run and round) and two plots: consensus distance against round (log scale) and
rounds-to-target against 1/gap.

With Byzantine fractions (``robustness.byzantine.fraction``, D-PSGD and CHOCO-SGD) and gossip rules
(``algorithm.robust_gossip``: plain ``W X``, ClippedGossip or trimmed mean) the grid becomes
topologies x node counts x fractions x rules; accuracies and consensus distances are then those of
the honest nodes (:meth:`fedsim.algorithms.decentralized.DecentralizedAlgorithm.honest`).
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from fedsim.config.loading import apply_overrides, read_yaml, validate_config
from fedsim.config.schema import ExperimentConfig
from fedsim.config.sweep import SweepConfig
from fedsim.errors import FedsimError
from fedsim.output import write_json_atomic
from fedsim.studies.sweep import TrialOutcome, load_base, run_sweep

__all__ = ["run_topology_study", "rounds_to_target", "plot_study"]

DECENTRALIZED = ("gossip", "dpsgd", "choco")
FRACTION_KEY, RULE_KEY = "robustness.byzantine.fraction", "algorithm.robust_gossip"
GOSSIP_RULES = ("plain", "clipped", "trimmed_mean")


def rounds_to_target(history: Sequence[dict[str, Any]], target: float, key: str = "node_accuracy_mean") -> int | None:
    """First round whose ``key`` reaches ``target``, or None if no evaluated round does."""
    for row in history:
        if row.get(key) is not None and row[key] >= target:
            return int(row["round"])
    return None


def _row(outcome: TrialOutcome, target: float) -> dict[str, Any]:
    """The study's row for one trial of the sweep: the graph's spectrum and the run's consensus series."""
    cfg = validate_config(read_yaml(outcome.dir / "config.yaml"), str(outcome.dir / "config.yaml"))
    nodes = cfg.data.num_clients
    topology = cfg.topology.build(nodes)
    spec = outcome.trial.point["topology.spec"]
    name = Path(spec).stem if isinstance(spec, str) and spec.endswith((".yaml", ".yml")) else str(spec)
    history, last = outcome.history(), outcome.history()[-1]
    byzantine = cfg.robustness.byzantine if cfg.robustness is not None else None
    fraction = byzantine.fraction if byzantine is not None else 0.0
    rule = getattr(cfg.algorithm, "robust_gossip", None)
    return {
        "topology": name,
        "nodes": nodes,
        "byzantine_fraction": fraction,
        "byzantine_nodes": int(round(fraction * nodes)),
        "attack": byzantine.attack if byzantine is not None and fraction > 0 else "none",
        "gossip_rule": rule.kind if rule is not None else "plain",
        "mixing": topology.mixing,
        "spectral_gap": topology.spectral_gap(),
        "lambda2": topology.lambda2(),
        "final_accuracy": outcome.summary["final_accuracy"],
        "final_node_accuracy_mean": last.get("node_accuracy_mean"),
        "final_node_accuracy_min": last.get("node_accuracy_min"),
        "final_consensus_distance": last["consensus_distance"],
        "target": target,
        "rounds_to_target": rounds_to_target(history, target),
        "bytes_per_node_per_round": last["bytes_per_node"],
        "run_dir": str(outcome.dir),
        "round": [r["round"] for r in history],
        "consensus_distance": [r["consensus_distance"] for r in history],
        "test_accuracy": [r["test_accuracy"] for r in history],
        "node_accuracy_mean": [r.get("node_accuracy_mean") for r in history],
    }


def _check(cfg: ExperimentConfig) -> None:
    if cfg.algorithm.kind not in DECENTRALIZED:
        raise FedsimError(f"study topology: algorithm.kind is {cfg.algorithm.kind!r}; allowed: {', '.join(DECENTRALIZED)}")
    topology = cfg.topology.build(cfg.data.num_clients)
    byzantine = cfg.robustness.byzantine if cfg.robustness is not None else None
    if byzantine is not None and byzantine.fraction > 0 and cfg.algorithm.kind not in ("dpsgd", "choco"):
        raise FedsimError(f"study topology: Byzantine nodes need algorithm.kind dpsgd or choco, got {cfg.algorithm.kind!r}")
    rule = getattr(cfg.algorithm, "robust_gossip", None)
    if rule is not None:
        rule.check(topology)  # a trimmed mean too wide for a neighbourhood fails here, not at round 1


def _rule_values(base: dict[str, Any], rules: Sequence[str]) -> list[dict[str, Any] | None]:
    """Grid values of ``algorithm.robust_gossip``: None for plain gossip, else the base's options with ``kind``."""
    unknown = [r for r in rules if r not in GOSSIP_RULES]
    if unknown:
        raise FedsimError(f"study topology: gossip rule {unknown[0]!r} is unknown (allowed: {', '.join(GOSSIP_RULES)})")
    options = dict(base.get("algorithm", {}).get("robust_gossip") or {})
    return [None if r == "plain" else {**options, "kind": r} for r in rules]


SERIES = ("round", "consensus_distance", "test_accuracy", "node_accuracy_mean")


def _write_csv(rows: Sequence[dict[str, Any]], path: Path) -> None:
    scalars = [k for k in rows[0] if k not in SERIES and k != "run_dir"]
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow([*scalars, *SERIES])
        for row in rows:
            for i in range(len(row["round"])):
                writer.writerow([*(row[k] for k in scalars), *(row[k][i] for k in SERIES)])


def _label(row: dict[str, Any]) -> str:
    """``ring``, or ``ring f=0.2 clipped`` when the study has Byzantine nodes or robust rules."""
    extra = f" f={row['byzantine_fraction']:g}" if row["byzantine_fraction"] else ""
    return row["topology"] + extra + (f" {row['gossip_rule']}" if row["gossip_rule"] != "plain" else "")


def plot_study(rows: Sequence[dict[str, Any]], out: Path) -> list[Path]:
    """``consensus.png`` (log consensus distance per round) and ``rounds_vs_gap.png`` (rounds-to-target vs 1/gap)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(dict.fromkeys(r["topology"] for r in rows))
    sizes = sorted({r["nodes"] for r in rows})
    colors = {t: plt.cm.tab10(i % 10) for i, t in enumerate(names)}
    styles = {n: s for n, s in zip(sizes, ["-", "--", ":", "-."] * len(sizes))}
    markers = {n: m for n, m in zip(sizes, "osD^v<>" * len(sizes))}

    # Exact averaging (complete graph) gives distances at rounding level or exactly 0, which a log
    # axis cannot show; they are left out and the legend says so.
    floor = 1e-12 * max(max(r["consensus_distance"]) for r in rows)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for r in rows:
        values = [v if v > floor else float("nan") for v in r["consensus_distance"]]
        exact = all(v != v for v in values)
        ax.plot(r["round"], values, styles[r["nodes"]], color=colors[r["topology"]],
                label=f"{_label(r)} (n={r['nodes']}, gap={r['spectral_gap']:.3g})" + (": exact consensus" if exact else ""))
    ax.set_yscale("log")
    ax.set_xlabel("round")
    ax.set_ylabel("consensus distance $\\frac{1}{n}\\sum_i\\|x_i-\\bar x\\|^2$")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    consensus = out / "consensus.png"
    fig.savefig(consensus, dpi=120, bbox_inches="tight")
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 4.5))
    for r in rows:
        reached = r["rounds_to_target"] is not None
        y = r["rounds_to_target"] if reached else len(r["round"])
        ax.scatter(1.0 / max(r["spectral_gap"], 1e-12), y, color=colors[r["topology"]], marker=markers[r["nodes"]],
                   facecolors=None if reached else "none", s=50)
        ax.annotate(f"{_label(r)} n={r['nodes']}" + ("" if reached else " (not reached)"),
                    (1.0 / max(r["spectral_gap"], 1e-12), y), fontsize=7, xytext=(4, 4), textcoords="offset points")
    ax.set_xscale("log")
    ax.set_xlabel("1 / spectral gap")
    ax.set_ylabel(f"rounds until mean node accuracy >= {rows[0]['target']:g}")
    ax.grid(alpha=0.3)
    gap_plot = out / "rounds_vs_gap.png"
    fig.savefig(gap_plot, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return [consensus, gap_plot]


def run_topology_study(
    config: str | Path | dict[str, Any],
    topologies: Sequence[str],
    nodes: Sequence[int],
    *,
    out: str | Path,
    target: float = 0.85,
    overrides: Iterable[str] = (),
    byzantine_fractions: Sequence[float] = (),
    gossip_rules: Sequence[str] = (),
    progress: Callable[[dict[str, Any]], None] | None = None,
    backend: str = "inline",
    parallel: int | None = None,
    resume: bool = False,
) -> list[dict[str, Any]]:
    """Run the sweep ``topologies x nodes`` and write ``study.json``, ``study.csv`` and the plots into ``out``.

    The runs are a :func:`fedsim.studies.sweep.run_sweep` over ``topology.spec x data.num_clients``
    (its ``sweep.json``, ``sweep.csv``, ``table.md`` and ``trials/`` are in ``out`` too). Every pair
    is checked (spec and node count) before the first run starts, so a typo fails in a second
    rather than after an hour.

    ``byzantine_fractions`` adds ``robustness.byzantine.fraction`` to the grid (the attack and its
    options come from the config or ``overrides``: ``robustness.byzantine.attack=...``) and
    ``gossip_rules`` adds the mixing rule (``plain``, ``clipped``, ``trimmed_mean``; their options
    from ``algorithm.robust_gossip`` of the config).
    """
    if not topologies or not nodes:
        raise FedsimError("study topology: give at least one topology and one node count")
    if any(not 0.0 <= f < 1.0 for f in byzantine_fractions):
        raise FedsimError(f"study topology: Byzantine fractions must be in [0, 1), got {list(byzantine_fractions)}")
    base, _ = load_base(config)
    base = apply_overrides(base, [*overrides, "output.plot=false"])
    grid: dict[str, list[Any]] = {"topology.spec": list(topologies), "data.num_clients": list(nodes)}
    if byzantine_fractions:
        grid[FRACTION_KEY] = list(byzantine_fractions)
    if gossip_rules:
        grid[RULE_KEY] = _rule_values(base, gossip_rules)
    spec = SweepConfig(grid=grid)
    result = run_sweep(base, spec, out=out, backend=backend, parallel=parallel, check=_check, plot=False, resume=resume,
                       source=str(config) if isinstance(config, (str, Path)) else "config")
    if result.failed:
        first = result.failed[0]
        raise FedsimError(f"study topology: {len(result.failed)} run(s) failed, first {first.trial.name}: {first.error}")
    rows = []
    for outcome in result.outcomes:
        rows.append(_row(outcome, target))
        if progress:
            progress(rows[-1])
    out = Path(out)
    write_json_atomic(out / "study.json", rows)
    _write_csv(rows, out / "study.csv")
    plot_study(rows, out)
    return rows
