"""fedsim report: one self-contained page, rendered by a real headless browser with every image loaded."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
import yaml

from tests.helpers import small_config

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# Written into the page's DOM after load: the natural width of every image (0 = did not decode).
PROBE = ("<script>window.addEventListener('load', () => document.body.setAttribute('data-widths', "
         "Array.from(document.images, i => i.complete ? i.naturalWidth : 0).join(',')));</script>")


def render(page, tmp_path) -> tuple[list[int], object]:
    """Load ``page`` (with PROBE appended) in headless chromium: image widths from the DOM, and a screenshot."""
    probe = tmp_path / f"probe-{page.name}"
    probe.write_text(page.read_text().replace("</body>", PROBE + "</body>"))
    flags = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
             "--virtual-time-budget=5000"]
    dom = subprocess.run([*flags, "--dump-dom", probe.as_uri()], capture_output=True, text=True, timeout=120).stdout
    found = re.search(r'data-widths="([0-9,]*)"', dom)
    assert found, f"the page did not finish loading in chromium: {dom[:300]!r}"
    shot = tmp_path / f"{page.stem}.png"
    subprocess.run([*flags, "--window-size=1200,1600", f"--screenshot={shot}", page.as_uri()], capture_output=True, timeout=120)
    import matplotlib.image

    return [int(w) for w in found.group(1).split(",") if w], matplotlib.image.imread(shot)


def self_contained(text: str) -> None:
    assert "<script" not in text and "<link" not in text and not re.search(r'src="(?!data:image/png;base64,)', text)


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium) to render the page")
def test_report_pages_render_in_chromium_with_every_image(tmp_path, cli):
    # A decentralized run (topology picture) and a private sweep (privacy ledger, mean +- std, bands).
    gossip = small_config(tmp_path)
    gossip["data"]["num_clients"] = 4
    gossip["algorithm"] = {"kind": "dpsgd", "rounds": 2, "local_steps": 2, "batch_size": 16, "lr": 0.05}
    gossip["topology"] = {"spec": "ring"}
    (tmp_path / "gossip.yaml").write_text(yaml.safe_dump(gossip))
    assert cli("run", str(tmp_path / "gossip.yaml"), "--out", str(tmp_path / "gossip"), "-q")[0] == 0
    private = small_config(tmp_path, kind="dp_fed_ls", ls_sigma=1.0)
    private["privacy"] = {"noise_multiplier": 1.0, "clip_norm": 0.3}
    (tmp_path / "private.yaml").write_text(yaml.safe_dump(private))
    code, _, err = cli("sweep", str(tmp_path / "private.yaml"), "--grid", "algorithm.ls_sigma=0,1", "--seeds", "0,1",
                       "--out", str(tmp_path / "sweep"), "--backend", "inline", "-q")
    assert code == 0, err

    pages = {}
    for name, folder in [("gossip", tmp_path / "gossip"), ("sweep", tmp_path / "sweep"),
                         ("trial", next((tmp_path / "sweep" / "trials").iterdir()))]:
        code, out, err = cli("report", str(folder), "-o", str(tmp_path / f"{name}.html"))
        assert code == 0, err
        pages[name] = (tmp_path / f"{name}.html").read_text()
        self_contained(pages[name])
    assert "<h2>Topology</h2>" in pages["gossip"] and "Privacy ledger" not in pages["gossip"]
    assert "Privacy ledger" in pages["trial"] and "noise_multiplier" in pages["trial"]
    assert "Mean ± std over seeds" in pages["sweep"] and pages["sweep"].count("2/2") == 2 and "epsilon" in pages["sweep"]

    for name, images in [("gossip", 2), ("sweep", 1)]:
        widths, shot = render(tmp_path / f"{name}.html", tmp_path)
        assert len(widths) == images and all(w > 300 for w in widths), widths
        assert shot.shape[1] == 1200 and shot.std() > 0.05  # something drawn, not a blank page


def test_report_refuses_a_folder_that_is_neither(tmp_path, cli):
    code, _, err = cli("report", str(tmp_path), "-o", str(tmp_path / "r.html"))
    assert code == 2 and "neither a run folder (summary.json) nor a sweep folder (sweep.json)" in err
    assert not (tmp_path / "r.html").exists()
