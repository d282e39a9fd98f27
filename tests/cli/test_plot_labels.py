"""``fedsim plot`` labels, integer round ticks, no glyph warnings; the topology drawing's circle."""

from __future__ import annotations

import warnings

import matplotlib.pyplot as plt
import networkx as nx
import pytest
import yaml

from fedsim.config.loading import dump_config, validate_config
from fedsim.plotting import plot_comparison, plot_curves, run_labels
from fedsim.topology.plot import plot_graph
from tests.helpers import small_config


@pytest.fixture
def figures(monkeypatch):
    """The figures the plotting functions close, kept open for inspection."""
    kept = []
    monkeypatch.setattr(plt, "close", lambda fig=None: kept.append(fig))
    yield kept
    for fig in kept:
        plt.figure(fig.number) if False else None
    plt.close("all")


def resolved(tmp_path, **algorithm):
    return yaml.safe_load(dump_config(validate_config(small_config(tmp_path, **algorithm))))


def test_labels_name_every_differing_key(tmp_path):
    a = resolved(tmp_path, lr=0.05, rounds=2)
    b = resolved(tmp_path, lr=0.1, rounds=3, batch_size=16, local_epochs=2, weight_decay=1e-4)
    la, lb = run_labels([a, b], ["a", "b"])
    assert la != lb
    for key in ("lr", "rounds", "batch_size", "local_epochs", "weight_decay"):
        assert f"{key}=" in la and f"{key}=" in lb, (la, lb)
    assert "lr=0.05" in la and "rounds=3" in lb


def test_identical_configs_fall_back_to_folder_names(tmp_path):
    a = resolved(tmp_path)
    assert run_labels([a, a], ["x", "y"]) == ["fedavg [x]", "fedavg [y]"]


def test_integer_round_ticks_and_no_glyph_warnings(tmp_path, figures):
    rows = [{"round": r, "test_accuracy": 0.5 + r / 10, "test_loss": 1.0 / r, "train_loss": 1.0 / r, "bytes_up": 10}
            for r in (1, 2, 3)]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        plot_comparison([("run $x$ \U0001F389 [a]", rows), ("b", rows)], tmp_path / "c.png")
        plot_curves(rows, tmp_path / "curves.png", title="folder $name$ \U0001F389")
    assert [str(w.message) for w in caught] == []
    for fig in figures:
        for ax in fig.axes:
            ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
            assert ticks and all(float(t).is_integer() for t in ticks), ticks


def test_topology_plot_circle_and_colour_bar(tmp_path, figures):
    plot_graph(nx.cycle_graph(12), tmp_path / "ring.png", "ring")
    plot_graph(nx.star_graph(11), tmp_path / "star.png", "star")
    ring, star = figures
    assert len(ring.axes) == 1  # regular: one degree, no colour bar
    assert len(star.axes) == 2  # degrees 1 and 11: a colour bar
    assert ring.axes[0].get_aspect() == 1.0  # equal scales: the circle is a circle
