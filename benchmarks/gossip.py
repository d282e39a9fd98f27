"""D-PSGD rounds per second: fedsim's (n, d) matrix form against a hand-written per-node Python loop.

Usage: ``PYTHONPATH=. python benchmarks/gossip.py [--nodes 16 64 256] [--rounds 3] [--topology ring]
[--runtime vectorized] [--repeats 3] [--threads 1] [--out FILE]``.

Both sides run the same arithmetic on the MNIST logistic model: every node takes one local SGD
step on its own minibatch (same seeds, so the same minibatches), then averages with its
neighbours through the Metropolis-Hastings W. fedsim does this as ``DPSGD.round``: local steps
through the runtime, gossip as one sparse product. The loop does it node by node, neighbour by
neighbour. A third contender, the hand-batched round, does the whole network's arithmetic in a few
tensor operations (closed-form gradient, one bmm, one gossip product): the bound fedsim's round is
measured against (targets: >= 10x the loop, within 1.5x of the hand-batched round). Contenders
alternate over ``--repeats`` and medians are reported. The JSON gives rounds per second for both, their ratio, the largest difference
between the two results, and the same for the gossip step alone.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from fedsim.algorithms.base import ServerState
from fedsim.experiment import Experiment, resolve_config
from fedsim.runtimes.vectorized import cohort_schedule
from fedsim.seeding import derive_seeds


def _experiment(n: int, topology: str, runtime: str) -> Experiment:
    return Experiment(resolve_config({
        "seed": 0,
        "data": {"num_clients": n, "partition": {"kind": "iid"}},
        "model": {"kind": "logistic"},
        "algorithm": {"kind": "dpsgd", "rounds": 1, "local_steps": 1, "batch_size": 32, "lr": 0.05},
        "topology": {"spec": topology},
        "runtime": {"kind": runtime, "device": "cpu"},
        "output": {"plot": False},
    }))


def _loop_gossip(x: list[torch.Tensor], weights: list[list[tuple[int, float]]]) -> list[torch.Tensor]:
    """Node i's new vector ``sum_j w_ij x_j``, neighbour by neighbour (one fused multiply-add each)."""
    out = []
    for row in weights:
        (j0, w0), *rest = row
        acc = torch.mul(x[j0], w0)
        for j, w in rest:
            acc.add_(x[j], alpha=w)
        out.append(acc)
    return out


def _loop_round(exp: Experiment, x: list[torch.Tensor], weights: list[list[tuple[int, float]]], rnd: int) -> list[torch.Tensor]:
    """One D-PSGD (adapt-then-combine) round written per node, as a reader of the paper would.

    Written lean, not as a straw man: each node's weight and bias are views of its flat vector
    (so gossip is one multiply-add per neighbour), the gradient is plain autograd of
    ``F.cross_entropy(F.linear(...))`` without fedsim's functional machinery, the step is in
    place, and the nodes' seeds come from one vectorized derivation per round; only then does
    each node draw its own permutation, as fedsim does, so that both see the same minibatches.
    """
    local = exp.algorithm.task.local
    seeds = derive_seeds(exp.cfg.seed, "batches", rnd, np.arange(len(x))).tolist()
    x_train, y_train, gen = exp.data.x_train, exp.data.y_train, torch.Generator()
    half = []
    for i, xi in enumerate(x):
        own = exp.data.client_indices[i]
        gen.manual_seed(seeds[i])
        rows = own[torch.randperm(len(own), generator=gen)[: local.batch_size]]
        xi = xi.clone()
        weight = xi[:7840].view(10, 784).detach().requires_grad_(True)
        bias = xi[7840:].detach().requires_grad_(True)
        loss = F.cross_entropy(F.linear(x_train.index_select(0, rows), weight, bias), y_train.index_select(0, rows))
        grad_w, grad_b = torch.autograd.grad(loss, (weight, bias))
        xi[:7840].sub_(grad_w.reshape(-1), alpha=local.lr)
        xi[7840:].sub_(grad_b, alpha=local.lr)
        half.append(xi)
    return _loop_gossip(half, weights)


def _batched_round(exp: Experiment, x: torch.Tensor, w: torch.Tensor, rnd: int) -> torch.Tensor:
    """The same round written by hand for the whole network at once (the bound fedsim aims at).

    The logistic model's gradient in closed form on one gather of every node's minibatch
    (``softmax(X_b W_i^T + b_i) - onehot``, then one bmm), the step, and the gossip product.
    Minibatches come from fedsim's batched schedule, i.e. the same samples as the other two.
    """
    local = exp.algorithm.task.local
    n = x.shape[0]
    sched = cohort_schedule(exp.algorithm.task, exp.data, list(range(n)), exp.cfg.seed, rnd)
    rows = sched.index[:, 0].reshape(-1)
    xb = exp.data.x_train.index_select(0, rows).view(n, -1, 784)
    yb = exp.data.y_train.index_select(0, rows).view(n, -1)
    weights, bias = x[:, :7840].view(n, 10, 784), x[:, 7840:]
    p = torch.softmax(torch.baddbmm(bias[:, None, :], xb, weights.transpose(1, 2)), dim=-1)
    p.scatter_add_(2, yb[..., None], torch.full_like(yb[..., None], -1.0, dtype=p.dtype))
    p /= yb.shape[1]
    grad = torch.cat([torch.bmm(p.transpose(1, 2), xb).reshape(n, -1), p.sum(1)], dim=1)
    return w @ (x - local.lr * grad)


def _stages(exp: Experiment, state: ServerState, x: torch.Tensor, w: torch.Tensor, rnd: int) -> dict[str, float]:
    """Seconds of each stage of one round, hand-batched (as :func:`_batched_round`) and fedsim's own.

    Stages run in the round's order, so each sees the caches the one before left behind.
    """
    local, algo, n = exp.algorithm.task.local, exp.algorithm, x.shape[0]
    out: dict[str, float] = {}

    def timed(name: str, fn: Any) -> Any:
        t0 = time.perf_counter()
        value = fn()
        out[name] = time.perf_counter() - t0
        return value

    sched = timed("schedule (cohort_schedule)", lambda: cohort_schedule(algo.task, exp.data, list(range(n)), exp.cfg.seed, rnd))
    rows = sched.index[:, 0].reshape(-1)
    xb = timed("gather x (n*B rows of 784)", lambda: exp.data.x_train.index_select(0, rows).view(n, -1, 784))
    yb = exp.data.y_train.index_select(0, rows).view(n, -1)
    weights, bias = x[:, :7840].view(n, 10, 784), x[:, 7840:]
    p = timed("forward bmm + softmax", lambda: torch.softmax(torch.baddbmm(bias[:, None, :], xb, weights.transpose(1, 2)), dim=-1))
    p.scatter_add_(2, yb[..., None], torch.full_like(yb[..., None], -1.0, dtype=p.dtype))
    p /= yb.shape[1]
    grad = timed("gradient bmm", lambda: torch.cat([torch.bmm(p.transpose(1, 2), xb).reshape(n, -1), p.sum(1)], dim=1))
    half = timed("step x - lr g", lambda: x - local.lr * grad)
    timed("gossip W @ X (sparse)", lambda: w @ half)
    state.params = x.clone()
    result = timed("fedsim: local updates (runtime, incl. schedule)", lambda: algo.local_updates(state, rnd, exp.runtime))
    timed("fedsim: x + u, W @ X", lambda: algo.mix(x + result.updates, w))
    timed("fedsim: round metrics (consensus distance)", lambda: algo.round_metrics(state, rnd, algo.full_message_bits(state), result.train_loss))
    return out


def bench(n: int, rounds: int, topology: str, runtime: str, repeats: int = 3) -> dict[str, object]:
    exp = _experiment(n, topology, runtime)
    algo = exp.algorithm
    matrix = algo.topology.matrix(0).tocsr()
    weights = [[(int(j), float(w)) for j, w in zip(matrix.indices[matrix.indptr[i]:matrix.indptr[i + 1]],
                                                  matrix.data[matrix.indptr[i]:matrix.indptr[i + 1]])] for i in range(n)]
    state = algo.init(exp.initial_params)
    algo.round(state, 0, exp.runtime)  # warm-up (caches W, first-touch allocations)
    start_x = state.params.clone()
    w_torch = algo.mixing(0, start_x.device)
    _batched_round(exp, start_x, w_torch, 0)  # warm-up
    times: dict[str, list[float]] = {"fedsim": [], "loop": [], "hand_batched": []}
    cpu: dict[str, list[float]] = {key: [] for key in times}

    def clock(key: str, fn: Any) -> None:
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        times[key].append((time.perf_counter() - t0) / rounds)
        cpu[key].append((time.process_time() - c0) / rounds)

    def run_fedsim() -> None:
        for rnd in range(1, rounds + 1):
            algo.round(state, rnd, exp.runtime)

    def run_loop() -> None:
        nonlocal x
        for rnd in range(1, rounds + 1):
            x = _loop_round(exp, x, weights, rnd)

    def run_batched() -> None:
        nonlocal xh
        for rnd in range(1, rounds + 1):
            xh = _batched_round(exp, xh, w_torch, rnd)

    for _ in range(repeats):  # interleaved, median of repeats
        state.params = start_x.clone()
        clock("fedsim", run_fedsim)
        x = list(start_x.unbind(0))
        clock("loop", run_loop)
        xh = start_x.clone()
        clock("hand_batched", run_batched)
    fedsim_s, loop_s, batched_s = (statistics.median(times[k]) for k in ("fedsim", "loop", "hand_batched"))
    fedsim_c, loop_c, batched_c = (statistics.median(cpu[k]) for k in ("fedsim", "loop", "hand_batched"))
    diff = float((torch.stack(x) - state.params).abs().max())
    diff_batched = float((xh - state.params).abs().max())
    final = state.params.clone()
    stage_runs = [_stages(exp, state, start_x, w_torch, 1) for _ in range(max(3, repeats))]
    stages_ms = {name: 1e3 * statistics.median(run[name] for run in stage_runs) for name in stage_runs[0]}
    state.params = final

    w = algo.mixing(0, state.params.device)
    reps = 20
    t0 = time.perf_counter()
    for _ in range(reps):
        y = w @ start_x
    gossip_s = (time.perf_counter() - t0) / reps
    rows = list(start_x.unbind(0))
    t0 = time.perf_counter()
    for _ in range(max(1, reps // 4)):
        z = _loop_gossip(rows, weights)
    loop_gossip_s = (time.perf_counter() - t0) / max(1, reps // 4)
    return {
        "nodes": n,
        "d": int(start_x.shape[1]),
        "edges": algo.topology.edges(),
        "fedsim_round_ms": 1e3 * fedsim_s,
        "loop_round_ms": 1e3 * loop_s,
        "hand_batched_round_ms": 1e3 * batched_s,
        "fedsim_rounds_per_s": 1 / fedsim_s,
        "loop_rounds_per_s": 1 / loop_s,
        "ratio": loop_s / fedsim_s,
        "ratio_fedsim_over_hand_batched": fedsim_s / batched_s,
        "cpu_ms": {"fedsim": 1e3 * fedsim_c, "loop": 1e3 * loop_c, "hand_batched": 1e3 * batched_c},
        "ratio_cpu": loop_c / fedsim_c,
        "ratio_cpu_fedsim_over_hand_batched": fedsim_c / batched_c,
        "ratio_hand_batched_over_loop": loop_s / batched_s,
        "loop_us_per_node": 1e6 * loop_s / n,
        "stages_ms": stages_ms,
        "targets": {"ratio_min": 10.0, "ratio_fedsim_over_hand_batched_max": 1.5},
        "max_abs_diff": diff,
        "max_abs_diff_hand_batched": diff_batched,
        "gossip_only": {
            "fedsim_steps_per_s": 1 / gossip_s,
            "loop_steps_per_s": 1 / loop_gossip_s,
            "ratio": loop_gossip_s / gossip_s,
            "max_abs_diff": float((torch.stack(z) - y).abs().max()),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, nargs="+", default=[16, 64, 256])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--topology", default="ring")
    parser.add_argument("--runtime", default="vectorized", help="runtime.kind for fedsim's side (serial, vectorized, ...)")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved repeats (median reported)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--out", help="Also write the JSON here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    load_start = os.getloadavg()[0]
    result = {
        "benchmark": "gossip",
        "model": "logistic",
        "topology": args.topology,
        "runtime": args.runtime,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "load_average_1m_at_start": load_start,
        "results": [bench(n, args.rounds, args.topology, args.runtime, args.repeats) for n in args.nodes],
    }
    result["load_average_1m_at_end"] = os.getloadavg()[0]
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        with open(args.out, "w") as fh:
            fh.write(text + "\n")


if __name__ == "__main__":
    main()
