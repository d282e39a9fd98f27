"""``fedsim privacy epsilon|noise`` against the analysis functions."""

import json

import pytest
from typer.testing import CliRunner

from fedsim.cli.privacy import app
from fedsim.errors import FedsimError

runner = CliRunner()


def test_epsilon_json():
    res = runner.invoke(app, ["epsilon", "--noise-multiplier", "1.5", "--sample-rate", "0.04", "--steps", "2250",
                              "--delta", "1e-5", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["epsilon"] == pytest.approx(7.32911117143, abs=5e-8) and out["exact"]


def test_noise_json_round_trips_and_poisson_is_labelled():
    res = runner.invoke(app, ["noise", "--target-epsilon", "8", "--sample-rate", "0.04", "--steps", "2000",
                              "--delta", "1e-5", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["noise_multiplier"] == pytest.approx(1.3562, abs=5e-5) and out["epsilon"] <= 8
    assert out["exact"] and out["adjacency"] == "add/remove-one" and out["sampling"] == "poisson"


def test_text_output_and_bad_delta():
    res = runner.invoke(app, ["epsilon", "--noise-multiplier", "1", "--sample-rate", "0.01", "--steps", "1000",
                              "--delta", "1e-5"])
    assert "epsilon = 2.10" in res.stdout and "exact" in res.stdout
    res = runner.invoke(app, ["epsilon", "--noise-multiplier", "1", "--sample-rate", "0.01", "--steps", "1000",
                              "--delta", "1.5"])
    assert isinstance(res.exception, FedsimError) and "delta" in str(res.exception)
