"""``fedsim report``: one self-contained HTML page for a run folder or a sweep folder.

Every plot is embedded as a base64 PNG and the page has no scripts, fonts or links to fetch, so it
opens offline and can be mailed as one file. A run's page holds its summary, curves, privacy
ledger (where the run is private), the topology drawing (where it is decentralized) and the
resolved config; a sweep's page holds the mean +- std table, the band plots, one row per trial
and the base config of its first trial.
"""

from __future__ import annotations

import base64
import csv
import html
import json
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from fedsim.config.loading import read_yaml, validate_config
from fedsim.errors import FedsimError
from fedsim.output import read_metrics

__all__ = ["write_report", "run_page", "sweep_page"]

DECENTRALIZED = ("gossip", "dpsgd", "choco")

STYLE = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; max-width: 1100px; margin: 2em auto; color: #222; padding: 0 1em; }
h1 { font-size: 1.6em; } h2 { font-size: 1.25em; border-bottom: 1px solid #ddd; padding-bottom: .2em; margin-top: 1.8em; }
table { border-collapse: collapse; margin: .6em 0; } th, td { border: 1px solid #ccc; padding: .25em .6em; text-align: left; }
th { background: #f3f3f3; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
pre { background: #f7f7f7; border: 1px solid #e3e3e3; padding: .8em; overflow-x: auto; font-size: 12.5px; }
img { max-width: 100%; border: 1px solid #eee; } .muted { color: #666; } .failed { color: #b00; }
"""


def _img(data: bytes | str, alt: str) -> str:
    b64 = data if isinstance(data, str) else base64.b64encode(data).decode()
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{b64}">'


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f'<td class="num">{value:.6g}</td>'
    if isinstance(value, int) and not isinstance(value, bool):
        return f'<td class="num">{value:,}</td>'
    if isinstance(value, (list, dict)):
        value = json.dumps(value)
    return f"<td>{html.escape(str(value))}</td>"


def _number(text: str) -> Any:
    """A CSV cell as a number where it is one (so the table aligns and rounds it)."""
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def _table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(_cell(v) for v in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _kv(mapping: Mapping[str, Any], skip: Iterable[str] = ()) -> str:
    return _table(["key", "value"], [(k, v) for k, v in mapping.items() if k not in set(skip)])


def _page(title: str, body: str) -> str:
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f"<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>\n{body}\n</body></html>\n")


def _curves(run_dir: Path, history: list[dict[str, Any]]) -> str:
    """The run's ``curves.png``, or the same plot drawn now when the run was made with ``output.plot: false``."""
    if (run_dir / "curves.png").exists():
        return _img((run_dir / "curves.png").read_bytes(), "curves")
    if not history:
        return '<p class="muted">no rounds recorded</p>'
    from fedsim.plotting import plot_curves

    with tempfile.TemporaryDirectory() as tmp:
        plot_curves(history, Path(tmp) / "curves.png", title=run_dir.name)
        return _img((Path(tmp) / "curves.png").read_bytes(), "curves")


def _topology(cfg: Any) -> str:
    from fedsim.topology.plot import plot_graph

    topology = cfg.topology.build(cfg.data.num_clients)
    with tempfile.TemporaryDirectory() as tmp:
        path = plot_graph(topology.graphs[0], Path(tmp) / "topology.png",
                          title=f"{topology.family}, n={topology.nodes}, spectral gap {topology.spectral_gap():.4g}")
        return _img(path.read_bytes(), "topology")


def run_page(run_dir: str | Path) -> str:
    """The HTML page of one run folder."""
    run_dir = Path(run_dir)
    summary = json.loads((run_dir / "summary.json").read_text())
    history = read_metrics(run_dir) if (run_dir / "metrics.jsonl").exists() else []
    config_text = (run_dir / "config.yaml").read_text() if (run_dir / "config.yaml").exists() else ""
    parts = ["<h2>Summary</h2>", _kv(summary, skip=("privacy",)), "<h2>Curves</h2>", _curves(run_dir, history)]
    privacy = summary.get("privacy")
    if privacy:
        ledger = {k: v for k, v in privacy.items() if k != "history"}
        parts += ["<h2>Privacy ledger</h2>", _kv(ledger)]
        if privacy.get("history"):
            parts.append(_table(["noise multiplier", "sample rate", "steps"], privacy["history"]))
    if config_text:
        cfg = validate_config(read_yaml(run_dir / "config.yaml"), str(run_dir / "config.yaml"))
        if cfg.algorithm.kind in DECENTRALIZED:
            parts += ["<h2>Topology</h2>", _topology(cfg)]
    if history:
        keys = [k for k in history[0] if k not in ("round",)]
        last = history[-1]
        parts += ["<h2>Last round</h2>", _kv({"round": last["round"], **{k: last.get(k) for k in keys}})]
    parts += ["<h2>Config</h2>", f"<pre>{html.escape(config_text)}</pre>"]
    return _page(f"fedsim run: {run_dir.name}", "\n".join(parts))


def sweep_page(sweep_dir: str | Path) -> str:
    """The HTML page of one sweep folder."""
    from fedsim.studies.sweep import _fmt, plot_bands, read_sweep, table_columns

    sweep_dir = Path(sweep_dir)
    meta, outcomes = read_sweep(sweep_dir)
    keys, table = meta["keys"], meta["table"]
    metrics = table_columns(table)
    done = sum(o.ok for o in outcomes)
    parts = [
        f'<p>{len(outcomes)} trials ({done} completed) on <b>{html.escape(meta["backend"])}</b> in {meta["wall_s"]:.1f} s; '
        f'config <code>{html.escape(str(meta["config"]))}</code>, seeds {html.escape(", ".join(map(str, meta["seeds"])))}, '
        f'fedsim {html.escape(meta["fedsim_version"])}.</p>',
        "<h2>Mean ± std over seeds</h2>",
        _table([*keys, "seeds", *metrics],
               [[*(json.dumps(r["point"][k]) if isinstance(r["point"][k], (list, dict)) else r["point"][k] for k in keys),
                 f"{len(r['seeds'])}/{r['trials']}", *(_fmt(r[m], m) for m in metrics)] for r in table]),
        '<p class="muted">mean ± sample standard deviation (ddof=1) over the seeds that completed.</p>',
        "<h2>Curves: mean ± 1 std</h2>",
    ]
    if (sweep_dir / "curves.png").exists():
        parts.append(_img((sweep_dir / "curves.png").read_bytes(), "sweep curves"))
    elif done:
        with tempfile.TemporaryDirectory() as tmp:
            plot_bands(outcomes, Path(tmp) / "curves.png", title=sweep_dir.name)
            parts.append(_img((Path(tmp) / "curves.png").read_bytes(), "sweep curves"))
    if (sweep_dir / "sweep.csv").exists():
        with (sweep_dir / "sweep.csv").open() as fh:
            rows = list(csv.reader(fh))
        parts += ["<h2>Trials</h2>", _table(rows[0], [[_number(v) for v in row] for row in rows[1:]])]
    failed = [o for o in outcomes if not o.ok]
    if failed:
        parts += ["<h2>Failed or diverged trials</h2>",
                  "<ul>" + "".join(f'<li class="failed">{html.escape(o.trial.name)}: {html.escape(o.error or "")}</li>' for o in failed) + "</ul>"]
    first = next((o for o in outcomes if (o.dir / "config.yaml").exists()), None)
    if first is not None:
        parts += [f"<h2>Config of {html.escape(first.trial.name)}</h2>", f"<pre>{html.escape((first.dir / 'config.yaml').read_text())}</pre>"]
    return _page(f"fedsim sweep: {sweep_dir.name}", "\n".join(parts))


def write_report(folder: str | Path, out: str | Path) -> Path:
    """Write the page of ``folder`` (a sweep folder with ``sweep.json`` or a run folder with ``summary.json``) to ``out``."""
    folder, out = Path(folder), Path(out)
    if (folder / "sweep.json").exists():
        page = sweep_page(folder)
    elif (folder / "summary.json").exists():
        page = run_page(folder)
    else:
        raise FedsimError(f"{folder}: neither a run folder (summary.json) nor a sweep folder (sweep.json)")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(page)
    tmp.replace(out)
    return out
