"""Asynchronous gossip on the simulated clock: randomized pairwise gossip and AD-PSGD.

Randomized gossip (Boyd, Ghosh, Prabhakar and Shah, "Randomized Gossip Algorithms", IEEE Trans.
Inf. Theory 2006, section II): whenever node i is free it picks a neighbour j uniformly at random
and both replace their values by ``(x_i + x_j) / 2``; the sum of all nodes' values is invariant.

AD-PSGD (Lian, Zhang, Zhang and Liu, "Asynchronous Decentralized Parallel Stochastic Gradient
Descent", ICML 2018, https://arxiv.org/abs/1710.06952, Algorithm 1): each worker repeatedly reads
its model ``x_hat_i``, computes a local update ``u_i`` from it (tau local SGD steps), averages
atomically with a random neighbour, ``x_i = x_j = (x_i + x_j) / 2``, and then applies
``x_i <- x_i + u_i`` — an update computed on the stale read.

Each node's iteration lasts its compute time (samples / speed, none for pure gossip) plus one
model exchange with the neighbour (the node's uplink and the neighbour's downlink) plus latency.
Events are processed in time order from a deterministic queue. Local work is still batched: a
node's update depends only on its read, so reads are collected and trained together (one
``run_cohort`` over the pending nodes, each from its own row) the first time one is needed.
One round is ``n`` events, so rounds compare with those of D-PSGD.
"""

from __future__ import annotations

import torch
from typing import Any

from fedsim.algorithms.base import RoundMetrics, ServerState
from fedsim.algorithms.decentralized import Decentralized
from fedsim.algorithms.simulated_clock import SimulatedClock
from fedsim.client.task import FLOAT_BITS, ClientTask
from fedsim.errors import FedsimError
from fedsim.runtimes.base import Runtime
from fedsim.seeding import torch_generator
from fedsim.systems import EventQueue
from fedsim.topology.gossip import consensus_distance
from fedsim.topology.topology import Topology

__all__ = ["AsyncGossip"]


class AsyncGossip(Decentralized):
    """Pairwise gossip (``task`` None) or AD-PSGD (``task`` set) on the simulated clock.

    Parameters
    ----------
    topology : Topology
        An undirected, static graph; a node exchanges with one uniformly drawn neighbour per event.
    task : ClientTask or None
        Each node's local work per iteration (AD-PSGD); None for pure randomized gossip.
    clock : SimulatedClock
        Node speeds and links.
    seed : int (default: 0)
        Root seed; event k's neighbour comes from the ``(seed, "gossip_peer", k)`` stream.
    """

    def __init__(self, *, topology: Topology, task: ClientTask | None, clock: SimulatedClock, seed: int = 0) -> None:
        if topology.directed or topology.period != 1:
            raise FedsimError("asynchronous gossip: needs a static undirected topology (pairwise averaging is symmetric)")
        super().__init__(topology=topology, task=task, seed=seed)
        self.clock = clock
        graph = topology.graphs[0]
        self.neighbours = [sorted(graph.neighbors(i)) for i in range(self.nodes)]
        if any(not nb for nb in self.neighbours):
            raise FedsimError("asynchronous gossip: every node needs a neighbour (the topology has an isolated node)")
        self.queue: EventQueue[int] = EventQueue()
        self.events = 0
        self.waves = 0
        self.reads: dict[int, torch.Tensor] = {}  # node -> the model its running iteration started from
        self.updates: dict[int, tuple[torch.Tensor, float]] = {}  # node -> (update, loss) once computed

    def iteration_time(self, node: int, dim: int) -> float:
        """Seconds of node ``node``'s iteration: local compute plus one model exchange and latency."""
        p = self.clock.profiles
        compute = 0.0
        if self.task is not None:
            samples = self.task.local.batch_size * (self.task.local.steps or 1)
            compute = samples / float(p.speed[node])
        exchange = dim * FLOAT_BITS / 8 * (1 / float(p.uplink[node]) + 1 / float(p.downlink[node]))
        return compute + exchange + float(p.latency[node])

    def start(self, state: ServerState, node: int) -> None:
        """Node ``node`` reads its model and starts an iteration now."""
        if self.task is not None:
            self.reads[node] = state.params[node].clone()
        self.queue.push(self.clock.now + self.iteration_time(node, state.params.shape[1]), node)

    def compute_pending(self, runtime: Runtime) -> None:
        """Train every node whose iteration has started but whose update is not known: one batched call."""
        nodes = sorted(n for n in self.reads if n not in self.updates)
        if not nodes:
            return
        start = torch.stack([self.reads[n] for n in nodes])
        assert self.task is not None, "asynchronous gossip trains before it mixes"
        result = runtime.run_cohort(self.task, start, nodes, self.waves)
        self.waves += 1
        for row, node in enumerate(nodes):
            self.updates[node] = (result.updates[row], float(result.train_loss[row]))

    def round(self, state: ServerState, rnd: int, runtime: Runtime) -> RoundMetrics:
        if len(self.queue) == 0:
            for node in range(self.nodes):
                self.start(state, node)
        x = state.params
        losses: list[float] = []
        for _ in range(self.nodes):
            self.clock.now, i = self.queue.pop()
            nb = self.neighbours[i]
            j = nb[int(torch.randint(len(nb), (1,), generator=torch_generator(self.seed, "gossip_peer", self.events)))]
            self.events += 1
            mean = (x[i] + x[j]) / 2
            x[i], x[j] = mean, mean
            if self.task is not None:
                if i not in self.updates:
                    self.compute_pending(runtime)
                update, loss = self.updates.pop(i)
                del self.reads[i]
                x[i] = x[i] + update.to(x.device)
                losses.append(loss)
            self.start(state, i)
        bits = self.nodes * 2 * self.full_message_bits(state)  # each event sends both ways
        return RoundMetrics(
            clients=self.nodes,
            train_loss=sum(losses) / len(losses) if losses else float("nan"),
            bytes_up=bits // 8,
            bytes_down=0,
            extra={"consensus_distance": consensus_distance(x), "bytes_per_node": bits / 8 / self.nodes,
                   "sim_time_s": self.clock.now, "clients_dropped": 0, "clients_stale": 0},
        )

    def state_dict(self) -> dict[str, Any]:
        pending = []
        while len(self.queue):
            pending.append(self.queue.pop())
        for time, node in pending:
            self.queue.push(time, node)
        return {"clock": self.clock.state_dict(), "queue": pending, "events": self.events, "waves": self.waves,
                "reads": dict(self.reads), "updates": {n: [u, loss] for n, (u, loss) in self.updates.items()}}

    def load_state_dict(self, sd: dict[str, Any]) -> None:
        self.clock.load_state_dict(sd["clock"])
        self.queue = EventQueue()
        for time, node in sd["queue"]:
            self.queue.push(time, node)
        self.events, self.waves = int(sd["events"]), int(sd["waves"])
        self.reads = dict(sd["reads"])
        self.updates = {n: (u, float(loss)) for n, (u, loss) in sd["updates"].items()}
