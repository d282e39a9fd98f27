"""``--set section.kind=...`` switches the section: keys the new kind does not accept are dropped
(and named on stderr) unless the same command sets them; ``fedsim validate`` shows the result."""

from __future__ import annotations

import pytest
import yaml

from tests.helpers import small_config


@pytest.fixture
def config(tmp_path):
    cfg = small_config(tmp_path)
    cfg["algorithm"].update(kind="fedprox", mu=0.1, participation={"kind": "poisson", "q": 0.2})
    cfg["runtime"] = {"kind": "vectorized", "device": "cpu", "max_clients": 8}
    cfg["compression"] = {"uplink": {"kind": "top_k", "ratio": 0.1, "feedback": "ef"}}
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.mark.parametrize(
    "override, section, expected, dropped",
    [
        ("data.partition.kind=iid", ("data", "partition"), {"kind": "iid"}, ["data.partition.alpha"]),
        ("algorithm.participation.kind=full", ("algorithm", "participation"), {"kind": "full"}, ["algorithm.participation.q"]),
        ("runtime.kind=serial", ("runtime",), {"kind": "serial", "device": "cpu"}, ["runtime.max_clients"]),
        ("compression.uplink.kind=sign", ("compression", "uplink"), {"kind": "sign", "feedback": "ef"}, ["compression.uplink.ratio"]),
    ],
)
def test_kind_switch_drops_foreign_keys(cli, config, override, section, expected, dropped):
    code, out, err = cli("validate", str(config), "--set", override)
    assert code == 0, err
    resolved = yaml.safe_load(out)
    for part in section:
        resolved = resolved[part]
    assert {k: v for k, v in resolved.items() if k in expected} == expected
    assert not any(d.rsplit(".", 1)[1] in resolved for d in dropped)
    assert all(d in err for d in dropped), err


def test_algorithm_kind_switch(cli, config):
    code, out, err = cli("validate", str(config), "--set", "algorithm.kind=fedavg")
    assert code == 0, err
    algorithm = yaml.safe_load(out)["algorithm"]
    assert algorithm["kind"] == "fedavg" and "mu" not in algorithm and algorithm["lr"] == 0.05  # shared keys kept
    assert "algorithm.mu" in err


def test_key_set_in_the_same_command_is_kept(cli, config):
    """A key the command sets explicitly is never dropped: the new kind refuses it by name."""
    code, _, err = cli("validate", str(config), "--set", "data.partition.kind=iid", "--set", "data.partition.alpha=0.3")
    assert code == 2 and "data.partition.alpha" in err and "unknown key" in err


def test_same_kind_drops_nothing(cli, config):
    code, out, err = cli("validate", str(config), "--set", "data.partition.kind=dirichlet")
    assert code == 0 and "dropped" not in err
    assert yaml.safe_load(out)["data"]["partition"]["alpha"] == 0.5


def test_switched_run_completes(tmp_path, cli, config):
    code, _, err = cli("run", str(config), "--quiet", "--set", "data.partition.kind=iid", "--set", "runtime.kind=serial")
    assert code == 0, err
    assert yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())["data"]["partition"] == {"kind": "iid"}
