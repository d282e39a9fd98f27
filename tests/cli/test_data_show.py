"""``fedsim data show``: the summary agrees with the partition it describes; --plot writes a PNG."""

from __future__ import annotations

import json

import yaml


def test_data_show_json_and_heat_map(tmp_path, cli):
    cfg = {"seed": 0, "data": {"dataset": "synthetic", "synthetic": {"num_devices": 12, "max_samples": 300},
                               "partition": {"kind": "natural", "max_clients": 9}}}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    code, out, err = cli("data", "show", str(path), "--json", "--plot", str(tmp_path / "h.png"))
    assert code == 0, err
    s = json.loads(out)
    assert s["num_clients"] == 9 and len(s["client_names"]) == 9 and all(n.startswith("device") for n in s["client_names"])
    assert [sum(h) for h in s["label_histograms"]] == s["sizes"] and sum(s["sizes"]) == s["train_samples"]
    assert s["size_min"] == min(s["sizes"]) and s["size_max"] == max(s["sizes"])
    assert (tmp_path / "h.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    code, out, _ = cli("data", "show", str(path), "--set", "data.partition.max_clients=3", "--rows", "2")
    assert code == 0 and "clients" in out and "device" in out


def test_data_show_bad_partition_is_a_one_line_error(tmp_path, cli):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"data": {"dataset": "synthetic", "partition": {"kind": "natural", "max_clientz": 3}}}))
    code, _, err = cli("data", "show", str(path))
    assert code == 2 and "max_clientz" in err and len(err.strip().splitlines()) == 1
