"""fedsim sweep: grid expansion and validation, the backends against each other and against `fedsim run`,
failed trials, --resume, mean +- std, and trials sharing a process without sharing global state."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
import yaml

from fedsim.config.sweep import SweepConfig
from fedsim.output import read_metrics
from fedsim.studies.sweep import expand, isolated, mean_std, plan, run_sweep, run_trial, _job
from tests.helpers import without_wall

GRID = ["--grid", "algorithm.lr=0.05,0.1", "--grid", "data.partition.alpha=0.1,1", "--seeds", "0,1"]


def tiny(tmp_path) -> dict:
    """Logistic FedAvg, 4 of 20 clients, 2 rounds of 5 local steps: well under a second of training."""
    return {
        "seed": 0,
        "data": {"num_clients": 20, "partition": {"kind": "dirichlet", "alpha": 0.5}},
        "model": {"kind": "logistic"},
        "algorithm": {"kind": "fedavg", "rounds": 2, "clients_per_round": 4, "lr": 0.05, "local_steps": 5},
        "runtime": {"kind": "serial", "device": "cpu"},
        "output": {"dir": str(tmp_path / "run"), "plot": False},
    }


def write(tmp_path, cfg: dict, name: str = "base.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(cfg))
    return path


def csv_rows(out) -> list[dict]:
    with (out / "sweep.csv").open() as fh:
        return [{k: v for k, v in row.items() if k != "wall_s"} for row in csv.DictReader(fh)]


def test_expand_product_zip_and_seeds(tmp_path):
    points = expand({"a": [1, 2], "b": ["x", "y", "z"]}, [{"c": [10, 20], "d": [0.1, 0.2]}])
    assert len(points) == 2 * 3 * 2 and len({json.dumps(p) for p in points}) == 12
    assert points[0] == {"a": 1, "b": "x", "c": 10, "d": 0.1} and points[1] == {"a": 1, "b": "x", "c": 20, "d": 0.2}
    assert all((p["c"], p["d"]) in ((10, 0.1), (20, 0.2)) for p in points)  # zip keys move together
    spec = SweepConfig(grid={"algorithm.lr": [0.05, 0.1]}, zip=[{"algorithm.rounds": [1, 3], "algorithm.local_steps": [2, 4]}],
                       seeds=[0, 1, 2])
    trials = plan(tiny(tmp_path), spec, tmp_path / "sw")
    assert len(trials) == 12 and len({t.name for t in trials}) == 12 and not (tmp_path / "sw").exists()
    cfg = trials[5].config
    assert (cfg["algorithm"]["lr"], cfg["algorithm"]["rounds"], cfg["algorithm"]["local_steps"], cfg["seed"]) == (0.05, 3, 4, 2)
    assert cfg["output"]["dir"] == str((tmp_path / "sw" / "trials" / trials[5].name).resolve()) and cfg["sweep"] is None


@pytest.mark.parametrize("args, message", [
    (["--grid", "algorithm.lr=0.05,-1"], "sweep: algorithm.lr=-1 (seed 0): "),
    (["--grid", "algorithm.lrr=0.05"], "algorithm.lrr: unknown key; did you mean 'lr'?"),
    (["--zip", "algorithm.lr=0.1,0.2;algorithm.rounds=1"], "sweep.zip: keys of one group need lists of one length"),
    (["--grid", "seed=1,2"], "sweep: key seed cannot be swept"),
    (["--grid", "algorithm.lr=0.1", "--seeds", "0,0"], "sweep.seeds: give distinct seeds"),
    (["--grid", "algorithm.lr=0.1", "--gpus", "0.5"], "sweep.resources.gpus: GPU shares are reserved by Ray Tune only"),
    (["--grid", "algorithm.lr=0.1", "--parallel", "2"], "sweep: --parallel needs the pool or tune backend"),
])
def test_bad_grid_is_one_line_and_nothing_is_written(tmp_path, cli, args, message):
    code, out, err = cli("sweep", str(write(tmp_path, tiny(tmp_path))), *args, "--out", str(tmp_path / "sw"), "--backend", "inline")
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "sw").exists()


def test_mean_and_sample_std_match_numpy():
    rng = np.random.default_rng(3)
    for n in (2, 3, 7):
        xs = rng.normal(size=n).tolist()
        mean, std, count = mean_std([*xs, None])
        assert count == n and mean == pytest.approx(np.mean(xs), abs=1e-15) and std == pytest.approx(np.std(xs, ddof=1), abs=1e-15)
    assert mean_std([0.5]) == (0.5, None, 1) and mean_std([None]) == (None, None, 0)


@pytest.mark.slow
def test_pool_and_tune_sweeps_match_standalone_runs_and_numpy_table(tmp_path, cli):
    base = write(tmp_path, tiny(tmp_path))
    code, out, err = cli("sweep", str(base), *GRID, "--out", str(tmp_path / "pool"), "--backend", "pool", "--parallel", "2")
    assert code == 0, err
    meta = json.loads((tmp_path / "pool" / "sweep.json").read_text())
    assert len(meta["trials"]) == 8 and {t["status"] for t in meta["trials"]} == {"completed"}
    assert (tmp_path / "pool" / "curves.png").stat().st_size > 10000 and "± " in (tmp_path / "pool" / "table.md").read_text()
    rows = csv_rows(tmp_path / "pool")
    # Two trials against `fedsim run` of the base config with the grid values set: same rounds, same numbers.
    for row in (rows[0], rows[7]):
        code, _, err = cli("run", str(base), "--set", f"algorithm.lr={row['algorithm.lr']}", "--set",
                           f"data.partition.alpha={row['data.partition.alpha']}", "--set", f"seed={row['seed']}",
                           "--out", str(tmp_path / f"alone-{row['trial']}"), "-q")
        assert code == 0, err
        alone = without_wall(read_metrics(tmp_path / f"alone-{row['trial']}"))
        assert without_wall(read_metrics(tmp_path / "pool" / row["run_dir"])) == alone
        assert float(row["final_accuracy"]) == alone[-1]["test_accuracy"]
    # The table's mean +- std per grid point, recomputed with numpy from sweep.csv.
    for point in meta["table"]:
        accs = [float(r["final_accuracy"]) for r in rows
                if float(r["algorithm.lr"]) == point["point"]["algorithm.lr"] and float(r["data.partition.alpha"]) == point["point"]["data.partition.alpha"]]
        assert len(accs) == 2 and point["final_accuracy"]["mean"] == pytest.approx(np.mean(accs), abs=1e-12)
        assert point["final_accuracy"]["std"] == pytest.approx(np.std(accs, ddof=1), abs=1e-12)

    # The same sweep on Ray Tune: the same rows and the same per-round metrics.
    ray = pytest.importorskip("ray")
    ray.init(address="local", num_cpus=2, include_dashboard=False, configure_logging=False, log_to_driver=False)
    try:
        code, _, err = cli("sweep", str(base), *GRID, "--out", str(tmp_path / "tune"), "--backend", "tune", "--parallel", "2", "-q")
        assert code == 0, err
        assert csv_rows(tmp_path / "tune") == rows
        for row in rows:
            assert without_wall(read_metrics(tmp_path / "tune" / row["run_dir"])) == without_wall(read_metrics(tmp_path / "pool" / row["run_dir"]))
        pids = {json.loads((tmp_path / "tune" / r["run_dir"] / "trial.json").read_text())["pid"] for r in rows}
        assert len(pids) < 8  # reused workers ran several trials each, and the results did not notice

        code, _, err = cli("sweep", str(base), "--grid", "data.partition.min_size=1,5000", "--seeds", "0", "--max-failures", "1",
                           "--out", str(tmp_path / "fail"), "--backend", "tune", "-q")
        assert code == 1 and "1 of 2 trials failed" in err
        good, bad = json.loads((tmp_path / "fail" / "sweep.json").read_text())["trials"]
        assert (good["status"], bad["status"], bad["attempts"]) == ("completed", "failed", 2) and "exceeds" in bad["error"]
    finally:
        ray.shutdown()


def test_failed_trial_is_retried_reported_and_resumed(tmp_path, cli):
    # min_size 5000 x 20 clients exceeds MNIST's 60000 examples: that trial fails when its data is built.
    base = write(tmp_path, tiny(tmp_path))
    args = ["sweep", str(base), "--grid", "data.partition.min_size=1,5000", "--seeds", "0", "--out", str(tmp_path / "sw"),
            "--backend", "inline", "--max-failures", "1"]
    code, out, err = cli(*args)
    assert code == 1 and "1 of 2 trials failed: 001-min_size=5000_seed0" in err, err
    good, bad = json.loads((tmp_path / "sw" / "sweep.json").read_text())["trials"]
    assert (good["status"], good["attempts"]) == ("completed", 1)
    assert bad["status"] == "failed" and bad["attempts"] == 2 and "exceeds 60000 samples" in bad["error"]
    rows = csv_rows(tmp_path / "sw")
    assert [r["status"] for r in rows] == ["completed", "failed"] and "exceeds" in rows[1]["error"]
    assert not (tmp_path / "sw" / "trials" / bad["name"] / "summary.json").exists()

    before = (tmp_path / "sw" / "trials" / good["name"] / "trial.json").read_text()
    code, _, err = cli(*args[:-2], "--resume")
    assert code == 1 and "1 of 2 trials failed" in err
    assert (tmp_path / "sw" / "trials" / good["name"] / "trial.json").read_text() == before  # skipped, not rerun
    assert json.loads((tmp_path / "sw" / "sweep.json").read_text())["trials"][1]["attempts"] == 1  # rerun, max_failures 0
    code, _, err = cli(*args[:4], "--seeds", "0,1", "--out", str(tmp_path / "sw"), "--backend", "inline", "--resume")
    assert code == 2 and "holds a different grid" in err


def test_trials_in_one_process_do_not_share_global_state(tmp_path):
    spec = SweepConfig(grid={"algorithm.lr": [0.1]}, seeds=[1])
    (trial,) = plan(tiny(tmp_path), spec, tmp_path / "a")
    run_trial(_job(trial, tmp_path / "a", threads=1, tracking_experiment="t"))
    reference = without_wall(read_metrics(tmp_path / "a" / "trials" / trial.name))
    # Leave the process in a state a careless trial could leave it in; the next trial must not notice.
    torch.set_num_threads(2)
    torch.manual_seed(123)
    np.random.seed(123)
    torch.set_default_dtype(torch.float64)
    try:
        state = torch.random.get_rng_state()
        with isolated(1):
            assert torch.get_num_threads() == 1 and torch.get_default_dtype() == torch.float32
        (trial_b,) = plan(tiny(tmp_path), spec, tmp_path / "b")
        run_trial(_job(trial_b, tmp_path / "b", threads=1, tracking_experiment="t"))  # its runtime sets 1 thread
        assert without_wall(read_metrics(tmp_path / "b" / "trials" / trial_b.name)) == reference
        assert torch.get_num_threads() == 2 and torch.get_default_dtype() == torch.float64
        assert torch.equal(torch.random.get_rng_state(), state)
    finally:
        torch.set_default_dtype(torch.float32)
        torch.set_num_threads(1)


def test_yaml_sweep_section_with_zip_and_run_ignores_it(tmp_path, cli):
    cfg = tiny(tmp_path)
    cfg["sweep"] = {"zip": [{"algorithm.lr": [0.05, 0.1], "algorithm.local_steps": [2, 3]}], "seeds": [3]}
    base = write(tmp_path, cfg)
    code, _, err = cli("sweep", str(base), "--out", str(tmp_path / "sw"), "--backend", "inline", "-q")
    assert code == 0, err
    trials = json.loads((tmp_path / "sw" / "sweep.json").read_text())["trials"]
    assert [(t["point"], t["seed"]) for t in trials] == [({"algorithm.lr": 0.05, "algorithm.local_steps": 2}, 3),
                                                         ({"algorithm.lr": 0.1, "algorithm.local_steps": 3}, 3)]
    done = yaml.safe_load((tmp_path / "sw" / "trials" / trials[1]["name"] / "config.yaml").read_text())
    assert (done["algorithm"]["lr"], done["algorithm"]["local_steps"], done["seed"], done["sweep"]) == (0.1, 3, 3, None)
    code, _, err = cli("run", str(base), "--out", str(tmp_path / "one"), "-q")  # fedsim run ignores sweep:
    assert code == 0, err


def test_diverged_trial_is_reported_left_out_of_the_table_and_not_rerun(tmp_path, cli):
    base = write(tmp_path, tiny(tmp_path))
    args = ["sweep", str(base), "--grid", "algorithm.lr=0.05,1.0e+39", "--seeds", "0,1", "--out", str(tmp_path / "sw"), "--backend", "inline"]
    code, _, err = cli(*args)
    assert code == 0 and "2 of 4 trials diverged (left out of the table): 002-lr=1e+39_seed0, 003-lr=1e+39_seed1" in err, err
    rows = csv_rows(tmp_path / "sw")
    assert [r["status"] for r in rows] == ["completed", "completed", "diverged", "diverged"] and "train_loss in round 1" in rows[2]["error"]
    table = json.loads((tmp_path / "sw" / "sweep.json").read_text())["table"]
    assert [r["final_accuracy"]["n"] for r in table] == [2, 0] and "| 1e+39 | 0/2 | - |" in (tmp_path / "sw" / "table.md").read_text()
    code, _, err = cli(*args, "--resume")
    assert code == 0 and err.count("(done before; skipped)") == 4
