"""Topologies: closed-form spectral gaps, mixing-matrix validity, consensus contraction, errors."""

from __future__ import annotations

import json
import math

import networkx as nx
import numpy as np
import pytest
import scipy.sparse as sp
from typer.testing import CliRunner

from fedsim.cli.topology import app
from fedsim.errors import FedsimError
from fedsim.topology import (
    build_topology,
    family_names,
    load_spec,
    metropolis_hastings,
    mixing_matrix,
    parametric,
    period_product,
    read_edge_list,
    second_eigenvalue_modulus,
    spectral_gap,
    validate_mixing,
)
from tests.helpers import REPO

TOPOLOGIES = REPO / "topologies"
# (family, n) pairs each family accepts; edge_list goes through its YAML spec.
SIZES = {"torus": 16, "grid": 16, "hypercube": 16, "edge_list": 10}


def _spec(family: str):
    return load_spec(TOPOLOGIES / "edge_list.yaml") if family == "edge_list" else family


@pytest.mark.parametrize("n", [3, 5, 8, 16, 33])
def test_ring_gap_closed_form(n):
    assert build_topology("ring", n).spectral_gap() == pytest.approx((2 / 3) * (1 - math.cos(2 * math.pi / n)), abs=1e-12)


@pytest.mark.parametrize("m", [3, 4, 5, 8])
def test_torus_gap_closed_form(m):
    assert build_topology("torus", m * m).spectral_gap() == pytest.approx(0.4 * (1 - math.cos(2 * math.pi / m)), abs=1e-12)


@pytest.mark.parametrize("n", [2, 5, 16])
def test_complete_gap_is_one_and_w_is_average(n):
    topo = build_topology("complete", n)
    assert np.allclose(topo.matrix(0).toarray(), np.full((n, n), 1 / n))
    assert topo.spectral_gap() == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("n", [3, 4, 8, 16])
def test_star_gap_is_one_over_n(n):
    assert build_topology("star", n).spectral_gap() == pytest.approx(1 / n, abs=1e-12)


@pytest.mark.parametrize("n", [2, 4, 8, 16, 32])
def test_hypercube_gap_closed_form(n):
    for kind in ("metropolis_hastings", "uniform", "max_degree"):
        assert build_topology("hypercube", n, kind).spectral_gap() == pytest.approx(2 / (1 + math.log2(n)), abs=1e-12)


@pytest.mark.parametrize("n", [4, 6, 8, 12, 16, 32])
def test_directed_exponential_gap(n):
    tau = math.ceil(math.log2(n))
    topo = build_topology("directed_exponential", n)
    assert not np.allclose(topo.matrix(0).toarray(), topo.matrix(0).toarray().T)
    assert topo.spectral_gap() == pytest.approx(2 / (tau + 1), abs=1e-12)


@pytest.mark.parametrize("n", [4, 8, 16, 64])
def test_one_peer_exponential_period_is_exact_average(n):
    topo = build_topology("one_peer_exponential", n)
    assert topo.period == math.log2(n)
    assert np.allclose(period_product(topo.matrices).toarray(), np.full((n, n), 1 / n), atol=1e-14)
    assert topo.spectral_gap() == pytest.approx(1.0)
    assert min(topo.round_gaps()) == 0.0  # single rounds with shift >= 2 are disconnected


def test_disconnected_gap_is_zero_and_invalid():
    graph = nx.disjoint_union(nx.cycle_graph(4), nx.cycle_graph(5))
    w = metropolis_hastings(graph)
    assert spectral_gap(w) == pytest.approx(0.0, abs=1e-12)
    assert spectral_gap(w, method="sparse") == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(FedsimError, match="disconnected .2 connected components"):
        validate_mixing(w, graph)


def test_parametric_gap_is_dialled():
    for gap in (0.01, 0.3, 1.0):
        assert spectral_gap(parametric(12, gap)) == pytest.approx(gap, abs=1e-12)
    with pytest.raises(FedsimError, match="use family 'complete'"):
        build_topology("ring", 8, "parametric", 0.3)


@pytest.mark.parametrize("family", ["ring", "torus", "random_regular", "watts_strogatz", "directed_exponential"])
def test_sparse_eigensolver_matches_dense(family):
    w = build_topology(family, 64 if family != "torus" else 64).matrix(0)
    assert second_eigenvalue_modulus(w, "sparse") == pytest.approx(second_eigenvalue_modulus(w, "dense"), abs=1e-7)


def _cases():
    for family in family_names():
        n = SIZES.get(family, 16)
        graph = build_topology(_spec(family), n).graphs[0]
        regular = len({d for _, d in graph.degree()}) == 1
        kinds = ["column_stochastic", "lazy"] if graph.is_directed() else ["metropolis_hastings", "max_degree", "lazy"]
        kinds += ["uniform"] if regular and not graph.is_directed() else []
        kinds += ["parametric"] if family == "complete" else []
        yield from ((family, n, kind) for kind in kinds)


@pytest.mark.parametrize("family,n,kind", list(_cases()))
def test_every_mixing_kind_is_doubly_stochastic(family, n, kind):
    topo = build_topology(_spec(family), n, kind, 0.25 if kind == "parametric" else None)
    for w, graph in zip(topo.matrices, topo.graphs):
        dense = w.toarray()
        assert (dense >= 0).all() and (np.diag(dense) > 0).all()
        assert np.abs(dense.sum(axis=0) - 1).max() <= 1e-12 and np.abs(dense.sum(axis=1) - 1).max() <= 1e-12
        if not graph.is_directed():
            assert np.array_equal(dense, dense.T)
        rows, cols = np.nonzero(dense - np.diag(np.diag(dense)))
        assert all(graph.has_edge(j, i) for i, j in zip(rows, cols))


def test_uniform_rejects_irregular_graph():
    with pytest.raises(FedsimError, match="needs a regular graph, got degrees 1..7"):
        mixing_matrix(nx.star_graph(7), "uniform")


@pytest.mark.parametrize("family,n", [("ring", 12), ("torus", 16), ("grid", 9), ("star", 10), ("erdos_renyi", 20),
                                      ("exponential", 12), ("watts_strogatz", 20)])
def test_consensus_contracts_by_lambda2_squared_and_keeps_average(family, n):
    """S002 (271): e_{t+1} <= |lambda_2(W)|^2 e_t, and X^{t+1} 1 = X^t 1 exactly up to rounding."""
    topo = build_topology(family, n)
    w = topo.matrix(0)
    lam2 = second_eigenvalue_modulus(w)
    x = np.random.default_rng(n).normal(size=(n, 7))
    mean0 = x.mean(axis=0)
    err = ((x - mean0) ** 2).sum() / n
    for _ in range(30):
        x = w @ x
        new = ((x - x.mean(axis=0)) ** 2).sum() / n
        assert new <= lam2**2 * err * (1 + 1e-9) + 1e-300
        assert np.allclose(x.mean(axis=0), mean0, rtol=0, atol=1e-13)
        err = new


def test_validator_names_each_problem():
    graph = nx.cycle_graph(4)
    w = metropolis_hastings(graph).toarray()
    bad_support = w.copy()
    bad_support[0, 2] = bad_support[2, 0] = 0.1
    bad_support[0, 0] -= 0.1
    bad_support[2, 2] -= 0.1
    cases = {
        "negative entry": w - 0.5 * np.eye(4) + 0.5 * np.eye(4)[[1, 0, 3, 2]] - np.eye(4)[[1, 0, 3, 2]],
        "not symmetric": w + np.diag([0.1, 0, 0, 0]) @ np.eye(4)[[1, 0, 2, 3]] - np.diag([0.1, 0, 0, 0]),
        "row 0 sums to": w + np.diag([0.1, 0, 0, 0]),
        r"entry \(0, 2\) is nonzero but the graph has no edge 2 -> 0": bad_support,
        "shape": np.eye(3),
    }
    for message, matrix in cases.items():
        with pytest.raises(FedsimError, match=message):
            validate_mixing(sp.csr_array(matrix), graph)


@pytest.mark.parametrize("text,n,message", [
    ("0 1\n1 x\n", 3, r":2: expected two non-negative integer node ids, got '1 x'"),
    ("0 1\n1 2 3\n", 3, ":2: expected two"),
    ("0 1\n2 2\n", 3, ":2: self-loop 2 2"),
    ("0 1\n1 5\n", 4, r":2: node id 5 out of range for nodes=4 \(ids are 0..3\)"),
    ("# nothing\n\n", 3, "no edges"),
])
def test_bad_edge_list_names_file_and_line(tmp_path, text, n, message):
    path = tmp_path / "g.txt"
    path.write_text(text)
    with pytest.raises(FedsimError, match=message):
        read_edge_list(path, n)


def test_disconnected_edge_list_and_generators_raise(tmp_path):
    path = tmp_path / "g.txt"
    path.write_text("0 1\n1 2\n3 4  # second component\n")
    with pytest.raises(FedsimError, match="graph is disconnected .2 connected components"):
        build_topology({"family": "edge_list", "path": str(path)}, 5)
    with pytest.raises(FedsimError, match=r"erdos_renyi\(nodes=40, p=0.01, seed=0\); raise p"):
        build_topology({"family": "erdos_renyi", "p": 0.01}, 40)
    with pytest.raises(FedsimError, match="nodes=12 must be a power of two"):
        build_topology("hypercube", 12)
    with pytest.raises(FedsimError, match="unknown family 'moebius'"):
        build_topology("moebius", 12)


def test_spec_files_load_and_bad_spec_keys_are_named(tmp_path):
    assert {p.stem for p in TOPOLOGIES.glob("*.yaml")} >= set(family_names())
    for path in TOPOLOGIES.glob("*.yaml"):
        spec = load_spec(path)
        build_topology(spec, SIZES.get(spec.family, 16))
    bad = tmp_path / "bad.yaml"
    bad.write_text("family: ring\ndegre: 3\n")
    with pytest.raises(FedsimError, match=r"bad.yaml: degre: Extra inputs are not permitted"):
        load_spec(bad)
    bad.write_text("family: complete\nmixing: {kind: parametric, gap: 2}\n")
    with pytest.raises(FedsimError, match="gap=2.0 must be in"):
        build_topology(load_spec(bad), 8)


def test_random_graphs_are_reproducible_and_seeded():
    a = build_topology({"family": "random_regular", "seed": 3}, 30).graphs[0]
    b = build_topology({"family": "random_regular", "seed": 3}, 30).graphs[0]
    c = build_topology({"family": "random_regular", "seed": 4}, 30).graphs[0]
    assert set(a.edges()) == set(b.edges()) != set(c.edges())


def test_cli_show_json_and_plot(tmp_path):
    runner = CliRunner()
    res = runner.invoke(app, ["show", "ring", "--nodes", "16", "--json"])
    assert res.exit_code == 0, res.output
    info = json.loads(res.output)
    assert (info["nodes"], info["edges"], info["valid"]) == (16, 16, True)
    assert info["spectral_gap"] == pytest.approx((2 / 3) * (1 - math.cos(2 * math.pi / 16)))
    assert info["lambda2"] == pytest.approx(1 - info["spectral_gap"])
    png = tmp_path / "g.png"
    res = runner.invoke(app, ["show", str(TOPOLOGIES / "edge_list.yaml"), "--nodes", "12", "--plot", str(png)])
    assert res.exit_code == 0 and png.stat().st_size > 1000
    assert "False" in res.output and "disconnected" in res.output
    res = runner.invoke(app, ["show", "torus", "--nodes", "10"])
    assert res.exit_code == 2 and "not a perfect square" in res.output


def test_large_graphs_use_the_sparse_solver_and_match_closed_form():
    """Beyond DENSE_LIMIT nodes, eigsh on W - 11^T/n gives the torus gap (2/5)(1 - cos(2 pi / m)) at m = 64."""
    topo = build_topology("torus", 64 * 64)
    assert topo.nodes > 3000
    assert topo.spectral_gap() == pytest.approx(0.4 * (1 - math.cos(2 * math.pi / 64)), rel=1e-8)
