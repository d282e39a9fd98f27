"""Trackers: what fedsim wrote, read back with TensorBoard's event accumulator and MLflow's client."""

from __future__ import annotations

import sys

import pytest
import yaml

from fedsim.output import read_metrics

from tests.helpers import small_config


def test_tensorboard_and_mlflow_read_back(tmp_path, cli, monkeypatch):
    pytest.importorskip("tensorboard")
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    monkeypatch.chdir(tmp_path)  # the default store is ./mlruns
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "tracked")
    cfg = small_config(tmp_path)
    cfg["output"]["trackers"] = ["tensorboard", "mlflow"]
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    code, _, err = cli("run", str(tmp_path / "c.yaml"), "--out", str(tmp_path / "run"), "-q")
    assert code == 0, err
    rows = read_metrics(tmp_path / "run")

    events = EventAccumulator(str(tmp_path / "run" / "tensorboard"))
    events.Reload()
    assert [(e.step, pytest.approx(e.value)) for e in events.Scalars("test_accuracy")] == [(r["round"], r["test_accuracy"]) for r in rows]
    assert [e.value for e in events.Scalars("bytes_up")] == [r["bytes_up"] for r in rows]
    assert "lr: 0.05" in events.Tensors("config/text_summary")[0].tensor_proto.string_val[0].decode()

    client = MlflowClient(tracking_uri=(tmp_path / "mlruns").as_uri())
    (run,) = client.search_runs([client.get_experiment_by_name("tracked").experiment_id])
    assert run.info.status == "FINISHED" and run.data.params["algorithm.lr"] == "0.05" and run.data.params["model.kind"] == "logistic"
    history = client.get_metric_history(run.info.run_id, "test_accuracy")
    assert sorted((m.step, m.value) for m in history) == [(r["round"], r["test_accuracy"]) for r in rows]
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"config.yaml", "metrics.jsonl", "summary.json", "tensorboard"} <= artifacts


def test_sweep_is_one_mlflow_experiment_with_a_run_per_trial(tmp_path, cli, monkeypatch):
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    cfg = small_config(tmp_path)
    cfg["output"]["trackers"] = ["mlflow"]
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    code, _, err = cli("sweep", str(tmp_path / "c.yaml"), "--grid", "algorithm.lr=0.05,0.1", "--out", str(tmp_path / "lr-sweep"),
                       "--backend", "inline", "-q")
    assert code == 0, err
    client = MlflowClient(tracking_uri=(tmp_path / "mlruns").as_uri())
    runs = client.search_runs([client.get_experiment_by_name("lr-sweep").experiment_id])
    assert sorted((r.data.params["algorithm.lr"], r.data.tags["grid.algorithm.lr"]) for r in runs) == [("0.05", "0.05"), ("0.1", "0.1")]


@pytest.mark.parametrize("tracker", ["tensorboard", "mlflow"])
def test_missing_tracker_package_is_one_line_naming_the_extra(tmp_path, cli, monkeypatch, tracker):
    monkeypatch.setitem(sys.modules, tracker, None)  # as if not installed: import raises ImportError
    cfg = small_config(tmp_path)
    cfg["output"]["trackers"] = [tracker]
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    code, _, err = cli("run", str(tmp_path / "c.yaml"), "--out", str(tmp_path / "run"), "-q")
    assert code == 2 and f"output.trackers: {tracker} needs the {tracker} package" in err and ".[tracking]" in err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "run").exists()


def test_python_api_attaches_trackers_and_the_bare_runner_refuses_to_drop_them(tmp_path):
    pytest.importorskip("tensorboard")
    import fedsim
    from fedsim.errors import FedsimError
    from fedsim.experiment import run as bare_run

    cfg = small_config(tmp_path)
    cfg["output"]["trackers"] = ["tensorboard"]
    result = fedsim.run(cfg, out=tmp_path / "api")
    assert any((result.run_dir / "tensorboard").iterdir())
    with pytest.raises(FedsimError, match="output.trackers: tensorboard are built by fedsim.run"):
        bare_run(cfg, out=tmp_path / "bare")
    assert not (tmp_path / "bare").exists()
