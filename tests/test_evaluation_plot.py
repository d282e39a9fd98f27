"""Per-client held-out evaluation, and ``fedsim plot`` overlaying real run folders."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml

from fedsim.evaluation import client_accuracies, fairness_metrics, split_client_holdout
from fedsim.experiment import run
from fedsim.plotting import comparison_series, run_labels
from tests.helpers import small_config
from tests.helpers import logistic, tiny_federation


def test_holdout_split_is_disjoint_and_covers_each_client():
    data = tiny_federation([10, 1, 33])
    train, held = split_client_holdout(data, 0.2, seed=0)
    assert [len(h) for h in held] == [2, 0, 6]
    for before, after, h in zip(data.client_indices, train.client_indices, held):
        assert sorted(torch.cat([after, h]).tolist()) == sorted(before.tolist())
    again = split_client_holdout(data, 0.2, seed=0)[1]
    assert all(torch.equal(a, b) for a, b in zip(held, again))


def test_client_accuracies_match_a_direct_count_and_order_statistics():
    data = tiny_federation([50, 20, 30, 40, 10])
    model = logistic()
    params = model.initial_params()
    _, held = split_client_holdout(data, 0.5, seed=1)
    acc = client_accuracies(model, params, data.x_train, data.y_train, held, batch_size=7)
    for k, h in enumerate(held):
        direct = (model.logits(params, data.x_train[h]).argmax(1) == data.y_train[h]).double().mean()
        assert acc[k].item() == pytest.approx(direct.item())
    m = fairness_metrics(torch.tensor([0.9, 0.5, 0.7, 1.0, 0.6], dtype=torch.float64))
    assert m["client_acc_mean"] == pytest.approx(0.74)
    assert m["client_acc_worst"] == 0.5
    assert m["client_acc_p10"] == pytest.approx(0.54)  # 10% of the way from 0.5 to 0.6 at rank 0.4


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory) -> list[Path]:
    tmp = tmp_path_factory.mktemp("runs")
    dirs = []
    for kind, extra in [("fedavg", {}), ("fedprox", {"mu": 0.1})]:
        cfg = small_config(tmp, kind=kind, rounds=3, **extra)
        cfg["evaluation"] = {"every": 2, "client_holdout": 0.2}
        dirs.append(run(cfg, out=tmp / kind).run_dir)
    return dirs


def test_runs_log_fairness_metrics_every_eval_round(two_runs):
    rows = [json.loads(line) for line in (two_runs[0] / "metrics.jsonl").read_text().splitlines()]
    evaluated = [r["round"] for r in rows if r["test_accuracy"] is not None]
    assert evaluated == [2, 3]
    for r in rows:
        has = "client_acc_mean" in r
        assert has == (r["test_accuracy"] is not None)
        if has:
            assert 0 <= r["client_acc_worst"] <= r["client_acc_p10"] <= r["client_acc_mean"] <= 1


def test_plot_cli_overlays_runs_with_config_labels(two_runs, cli, tmp_path):
    out = tmp_path / "cmp.png"
    for x in ("round", "bytes_up", "wall_s"):
        code, stdout, err = cli("plot", *map(str, two_runs), "-o", str(out), "--x", x, "--y", "test_loss")
        assert code == 0, err
        assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    configs = [yaml.safe_load((d / "config.yaml").read_text()) for d in two_runs]
    labels = run_labels(configs, [d.name for d in two_runs])
    assert labels[0].startswith("fedavg") and labels[1].startswith("fedprox") and "mu=0.1" in labels[1]
    rows = [json.loads(line) for line in (two_runs[0] / "metrics.jsonl").read_text().splitlines()]
    xs, _ = comparison_series(rows, "bytes_up", "test_accuracy")
    assert xs[-1] == pytest.approx(sum(r["bytes_up"] for r in rows) / 1e6)


def test_plot_cli_errors_are_one_line(two_runs, cli, tmp_path):
    code, _, err = cli("plot", str(tmp_path), "-o", str(tmp_path / "x.png"))
    assert code == 2 and "no metrics.jsonl" in err and len(err.strip().splitlines()) == 1
    code, _, err = cli("plot", str(two_runs[0]), "-o", str(tmp_path / "x.png"), "--x", "epochs")
    assert code == 2 and "epochs" in err
