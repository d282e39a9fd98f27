"""The Ray runtime: long-lived actors, each training a contiguous block of the cohort.

The training set goes into the object store once, as numpy arrays, which Ray maps into every
actor on the node without a copy (a pickled tensor would be copied at the put and again in every
actor); an actor keeps it (moved to its GPU share, if any) for its lifetime. Each round the
client task, the global parameters and the broadcast tensors are put once and every actor reads
the same objects; an actor gets one call per round with its block of client ids, draws the
block's minibatch schedule itself from the seed (as every runtime does) and returns one stacked
result. It trains its block with the vectorized engine, so one actor per CPU (or per GPU
fraction) does the work of many clients; a convolutional or recurrent model trains client by
client inside the actor on CPU, batched on CUDA, by the vectorized runtime's own ``conv`` rule. The blocks depend only on the cohort and
the number of actors, never on which actor is alive or finishes first, and the results are
concatenated in client-id order: a round's outcome does not depend on scheduling. An actor
that dies mid-round is replaced and its block is retried on another actor; because client
work is a pure function of (seed, round, client), the retried block returns the same result.

Ray is imported lazily: fedsim runs without it unless ``runtime.kind: ray`` is chosen.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

from fedsim.client.task import ClientTask
from fedsim.data.federated import FederatedData
from fedsim.errors import FedsimError
from fedsim.models.functional import FunctionalModel
from fedsim.runtimes.base import CohortResult, Runtime, resolve_device
from fedsim.runtimes.vectorized import CONV_MODES, VectorizedRuntime

__all__ = ["ClientWorker", "RayRuntime", "SharedData", "ShippedResult", "block_bounds"]


def block_bounds(cohort_size: int, blocks: int) -> list[tuple[int, int]]:
    """Split ``range(cohort_size)`` into at most ``blocks`` contiguous, nearly equal, non-empty pieces."""
    blocks = max(1, min(blocks, cohort_size))
    base, extra = divmod(cohort_size, blocks)
    bounds, lo = [], 0
    for b in range(blocks):
        hi = lo + base + (b < extra)
        bounds.append((lo, hi))
        lo = hi
    return bounds


class SharedData:
    """A :class:`FederatedData` in the form Ray shares without copying: its tensors as numpy arrays.

    Ray serializes numpy arrays out of band (pickle protocol 5) and maps them read-only from the
    object store into each process on the node, where :meth:`get` wraps them as tensors without a
    copy. Client work only reads the training set (augmentation makes a new tensor), so the
    read-only memory is never written. A tensor numpy cannot hold (bfloat16) is pickled as is.
    """

    FIELDS = ("x_train", "y_train", "x_test", "y_test")

    def __init__(self, data: FederatedData) -> None:
        self.arrays = {name: _as_array(getattr(data, name)) for name in self.FIELDS}
        self.sizes = [len(i) for i in data.client_indices]
        flat = torch.cat(data.client_indices) if data.client_indices else torch.zeros(0, dtype=torch.long)
        self.indices = _as_array(flat)
        empty = torch.zeros(0)
        self.shell = replace(data, x_train=empty, y_train=empty, x_test=empty, y_test=empty, client_indices=[])

    def get(self) -> FederatedData:
        """The federated data, its tensors backed by the arrays (the object store's memory under Ray)."""
        with warnings.catch_warnings():  # the object store's arrays are read-only, and stay unwritten
            warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
            x_train, y_train, x_test, y_test = (_as_tensor(self.arrays[name]) for name in self.FIELDS)
            indices = _as_tensor(self.indices)
        return replace(self.shell, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test,
                       client_indices=list(torch.split(indices, self.sizes)))


def _as_array(t: torch.Tensor) -> np.ndarray | torch.Tensor:
    t = t.detach().cpu().contiguous()
    try:
        return t.numpy()
    except TypeError:  # a dtype numpy lacks
        return t


def _as_tensor(a: np.ndarray | torch.Tensor) -> torch.Tensor:
    return torch.from_numpy(a) if isinstance(a, np.ndarray) else a


class ClientWorker:
    """What one actor holds: the model, the whole federated training set, and a vectorized engine.

    Built in two calls so that the actor's process starts (and imports torch) while the driver
    is still putting the training set into the object store: the constructor takes only scalars,
    :meth:`load` the model and the data.
    """

    def __init__(self, seed: int, device: str, max_clients: int, threads: int, conv: str) -> None:
        self.seed, self.device, self.max_clients, self.threads, self.conv = seed, resolve_device(device), max_clients, threads, conv
        self.engine: VectorizedRuntime | None = None
        self.load_error: Exception | None = None

    def load(self, model: FunctionalModel, data: SharedData) -> None:
        """Build the engine on the training set (moved to the actor's device once)."""
        try:
            self.engine = VectorizedRuntime(model, data.get(), seed=self.seed, device=self.device, max_clients=self.max_clients,
                                            conv=self.conv, threads=self.threads)
        except Exception as exc:
            self.load_error = exc  # a replacement actor's load is not waited on: its first run() raises this
            raise

    def run(
        self,
        task: ClientTask,
        params: torch.Tensor,
        cohort: list[int],
        rnd: int,
        states: list[dict[str, torch.Tensor]] | None,
        broadcast: dict[str, torch.Tensor],
    ) -> "ShippedResult":
        """Train one block of the cohort; one stacked result, in the form Ray returns without pickling tensors."""
        # load() ran first: Ray runs one caller's calls to an actor in submission order.
        if self.engine is None:
            raise self.load_error or RuntimeError("the actor's engine was never loaded")
        return ShippedResult(self.engine.run_cohort(task, params, cohort, rnd, states, broadcast))

    def where(self) -> tuple[str, int]:
        """(Ray node id, process id) of this actor."""
        import ray

        return ray.get_runtime_context().get_node_id(), os.getpid()


class ShippedResult:
    """A block's :class:`CohortResult` with its large tensors (updates, client states) as numpy arrays.

    Ray writes numpy arrays into the object store with one copy and the driver reads them in
    place, where pickling a tensor goes through torch's storage serialization on both sides.
    """

    def __init__(self, result: CohortResult) -> None:
        self.clients = result.clients
        self.updates = _as_array(result.updates)
        self.small = (result.num_samples.cpu(), result.train_loss.cpu(), result.bits_up.cpu(), result.steps.cpu())
        self.states = [{k: _as_array(v) for k, v in s.items()} for s in result.states]

    def get(self) -> CohortResult:
        """The cohort result, every tensor the driver's own (the object store's memory is read-only)."""
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
            updates = _as_tensor(self.updates).clone()
            states = [{k: _as_tensor(v).clone() for k, v in s.items()} for s in self.states]
        num_samples, train_loss, bits_up, steps = self.small
        return CohortResult(self.clients, updates, num_samples, train_loss, bits_up, steps, states)


@dataclass
class PendingRound:
    """A submitted round: each block's bounds, its Ray reference and the arguments to resubmit it."""

    cohort: list[int]
    bounds: list[tuple[int, int]]
    refs: list[Any]
    args: list[tuple[Any, ...]]
    owners: list[Any]  # the actor handle that runs each block


class RayRuntime(Runtime):
    """Client work on Ray actors, locally or on a cluster.

    Parameters
    ----------
    model, data, seed
        As for :class:`~fedsim.runtimes.Runtime`.
    address : str or None (default: None)
        ``None`` starts a new Ray instance on this machine (or uses the session this process
        already joined), never attaching to another process's instance;
        ``"auto"`` joins the cluster started with ``ray start``; ``"ray://host:10001"`` connects
        through Ray Client.
    num_actors : int or None (default: None)
        Actors to start; by default one per CPU in the cluster.
    device : str (default: "auto")
        Where actors train: ``auto`` asks for an equal fraction of the cluster's GPUs per actor
        when it has any, else CPU.
    max_clients : int (default: 256)
        Clients per batched pass inside an actor.
    conv : str (default: "auto")
        How an actor evaluates a convolutional or recurrent model, as for
        :class:`~fedsim.runtimes.VectorizedRuntime` (``auto``: client by client on a CPU actor,
        batched on a GPU one).
    max_retries : int (default: 3)
        How many times a block whose actor died is retried before the round fails.
    threads : int or None (default: None)
        torch intra-op threads in each actor; by default the actor's share of CPUs.
    """

    def __init__(
        self,
        model: FunctionalModel,
        data: FederatedData,
        *,
        seed: int,
        address: str | None = None,
        num_actors: int | None = None,
        device: str = "auto",
        max_clients: int = 256,
        max_retries: int = 3,
        threads: int | None = None,
        conv: str = "auto",
    ) -> None:
        began = time.perf_counter()
        try:
            import ray
        except ImportError as exc:  # pragma: no cover - ray is a test dependency
            raise FedsimError("runtime.kind: 'ray' needs Ray (pip install 'fedsim[ray]')") from exc
        super().__init__(model, data, seed=seed)
        self._ray = ray
        self._owns_ray = not ray.is_initialized()
        self._reaper: subprocess.Popen[bytes] | None = None
        if self._owns_ray:
            # address None means this machine's own new instance ("local"): plain ray.init() would
            # attach to whatever other Ray instance runs here (another user's, with no free CPUs).
            init_args: dict[str, Any] = {"address": address or "local", "logging_level": "warning", "log_to_driver": False}
            if address is None:
                init_args["include_dashboard"] = False
            token_log = logging.getLogger("ray._private.authentication.authentication_token_setup")
            token_log.addFilter(_quiet_token_notice)
            try:
                ray.init(**init_args)
            except ConnectionError as exc:
                raise FedsimError(f"runtime.address: cannot reach a Ray cluster at '{address}' ({exc})") from exc
            finally:
                token_log.removeFilter(_quiet_token_notice)
            if address is None:
                self._reaper = _start_reaper(ray)
        #: Seconds of this runtime's start: importing Ray and starting (or joining) its instance, then
        #: the actors up with the data loaded.
        self.startup: dict[str, float] = {"ray_init_s": time.perf_counter() - began}
        resources = ray.cluster_resources()
        cpus = int(resources.get("CPU", 1))
        self.num_actors = num_actors or max(1, cpus)
        gpus = resources.get("GPU", 0.0) if device != "cpu" else 0.0
        if device == "cuda" and not gpus:
            raise FedsimError(f"runtime.device: '{device}' requested but the Ray cluster has no GPU (allowed: auto, cpu)")
        if conv not in CONV_MODES:
            raise FedsimError(f"runtime.conv: unknown mode '{conv}' (allowed: {', '.join(CONV_MODES)})")
        self._actor_options = {
            "num_cpus": max(cpus // self.num_actors, 1) if cpus >= self.num_actors else cpus / self.num_actors,
            "num_gpus": gpus / self.num_actors if gpus else 0,
            "max_restarts": 0,
        }
        #: torch intra-op threads in each actor.
        self.actor_threads = threads if threads is not None else max(int(self._actor_options["num_cpus"]), 1)
        self._worker_args = (seed, "cuda" if gpus else "cpu", max_clients, self.actor_threads, conv)
        self.max_retries = max_retries
        self.retries = 0
        self._remote_worker = ray.remote(ClientWorker)
        # Actors first: their processes start and import torch while the driver puts the data.
        self.actors: list[Any] = [self._start() for _ in range(self.num_actors)]
        try:
            self._load_args = (ray.put(model), ray.put(SharedData(data)))
            # Wait for the actors here, so that a failing start shows now and round 1 times training only.
            ray.get([actor.load.remote(*self._load_args) for actor in self.actors])
        except BaseException:
            self.close()  # nobody else holds this runtime yet: leave no actor or Ray instance behind
            raise
        self.startup["actors_ready_s"] = time.perf_counter() - began - self.startup["ray_init_s"]

    def _start(self) -> Any:
        """A new actor, before its engine is loaded."""
        return self._remote_worker.options(**self._actor_options).remote(*self._worker_args)

    def _spawn(self) -> Any:
        """A new actor with its engine loaded (its first call waits for that)."""
        actor = self._start()
        actor.load.remote(*self._load_args)
        return actor

    def submit(
        self,
        task: ClientTask,
        params: torch.Tensor,
        cohort: Sequence[int],
        rnd: int,
        states: Sequence[dict[str, torch.Tensor]] | None = None,
        broadcast: dict[str, torch.Tensor] | None = None,
    ) -> PendingRound:
        """Start a round: one call per actor with its contiguous block of the cohort; returns without waiting.

        The task, a shared ``(d,)`` start point and the broadcast tensors are put into the object
        store once and read by every actor; only the block's client ids, its rows of a ``(C, d)``
        start and its clients' states travel with each call.
        """
        cohort = list(cohort)
        params = params.detach().cpu()
        put = self._ray.put
        task_ref = put(task)
        shared = put(params) if params.dim() == 1 else None
        broadcast_ref = put({k: v.detach().cpu() for k, v in (broadcast or {}).items()})
        bounds = block_bounds(len(cohort), len(self.actors))
        args, refs = [], []
        for b, (lo, hi) in enumerate(bounds):
            block_params = shared if shared is not None else params[lo:hi].clone()  # a slice would pickle the whole matrix
            block_states = [{k: v.cpu() for k, v in s.items()} for s in states[lo:hi]] if states else None
            args.append((task_ref, block_params, cohort[lo:hi], rnd, block_states, broadcast_ref))
            refs.append(self.actors[b].run.remote(*args[-1]))
        return PendingRound(cohort, bounds, refs, args, [self.actors[b] for b in range(len(bounds))])

    def collect(self, pending: PendingRound) -> CohortResult:
        """Wait for every block, retrying a dead actor's block elsewhere; concatenate in client-id order."""
        parts = []
        for b, ref in enumerate(pending.refs):
            owner, attempts = pending.owners[b], 0
            while True:
                try:
                    parts.append(self._ray.get(ref).get())
                    break
                except self._ray.exceptions.RayActorError:
                    attempts += 1
                    if attempts > self.max_retries:
                        raise
                    self.retries += 1
                    self._replace(owner)
                    # Another actor than the block's own, so one flaky node does not take every retry.
                    owner = self.actors[(b + attempts) % len(self.actors)]
                    ref = owner.run.remote(*pending.args[b])
        return CohortResult.concat(parts)

    def _replace(self, dead: Any) -> None:
        """Swap the actor whose task failed for a fresh one (busy actors are never pinged: a long
        block would make a live actor look dead)."""
        self.actors = [self._spawn() if actor is dead else actor for actor in self.actors]

    def run_cohort(
        self,
        task: ClientTask,
        params: torch.Tensor,
        cohort: Sequence[int],
        rnd: int,
        states: Sequence[dict[str, torch.Tensor]] | None = None,
        broadcast: dict[str, torch.Tensor] | None = None,
    ) -> CohortResult:
        return self.collect(self.submit(task, params, cohort, rnd, states, broadcast))

    def placement(self) -> list[tuple[str, int]]:
        """(node id, pid) of every actor, in actor order."""
        return self._ray.get([a.where.remote() for a in self.actors])

    def close(self) -> None:
        for actor in self.actors:
            self._ray.kill(actor)
        self.actors = []
        if self._owns_ray:
            self._ray.shutdown()
        if self._reaper is not None:  # shut down cleanly: the reaper leaves without killing anything
            try:
                self._reaper.communicate(b"done\n", timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self._reaper.kill()
            self._reaper = None


# --------------------------------------------------------------------------- a local Ray start that leaves nothing behind


def _quiet_token_notice(record: logging.LogRecord) -> bool:
    """Drop Ray's notice that a new local cluster uses token authentication (it does; nothing to act on)."""
    return "Token authentication is enabled for this Ray cluster" not in record.getMessage()


# Runs in its own interpreter and waits for its stdin to close, adding every 2 s the processes the
# Ray head processes started (the raylet starts its agents and workers after ray.init returns).
# "done" first means a clean shutdown; end-of-file without it means the driver died (SIGKILL,
# OOM), and every recorded process -- Ray's head processes and the raylet's agents, which
# otherwise poll for their dead parent for half a minute or more -- still alive with its recorded
# start time (not a reused pid) is killed.
_REAPER = """
import os, select, signal, sys
signal.signal(signal.SIGINT, signal.SIG_IGN)
signal.signal(signal.SIGTERM, signal.SIG_IGN)

def stats():
    out = {}
    for entry in os.listdir("/proc"):
        try:
            with open("/proc/%s/stat" % entry) as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            out[int(entry)] = (int(fields[1]), int(fields[19]))
        except (OSError, ValueError, IndexError):
            pass
    return out

known = dict(tuple(int(v) for v in item.split(":")) for item in sys.argv[1:])
received = b""
while True:
    if select.select([0], [], [], 2.0)[0]:
        chunk = os.read(0, 64)
        if not chunk:
            break
        received += chunk
        if received.startswith(b"done"):
            sys.exit(0)
        continue
    for pid, (ppid, start) in stats().items():
        if ppid in known and pid not in known:
            known[pid] = start
now = stats()
for pid, start in known.items():
    if now.get(pid, (0, None))[1] == start:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
"""


def _proc_stats() -> dict[int, tuple[int, int]]:
    """pid -> (parent pid, start time in clock ticks) of every process (Linux /proc)."""
    stats = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            stats[int(entry)] = (int(fields[1]), int(fields[19]))
        except (OSError, ValueError, IndexError):
            continue
    return stats


def _start_reaper(ray: Any) -> subprocess.Popen[bytes] | None:
    """Start a watcher that kills this driver's local Ray processes if the driver dies without shutting Ray down."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        node = ray._private.worker._global_node  # private, hence the broad guard: no reaper rather than no run
        heads = {info.process.pid for infos in node.all_processes.values() for info in infos if info.process is not None}
    except Exception:  # noqa: BLE001
        return None
    stats = _proc_stats()
    targets = [f"{pid}:{stats[pid][1]}" for pid in sorted(heads) if pid in stats]
    try:
        return subprocess.Popen([sys.executable, "-c", _REAPER, *targets], stdin=subprocess.PIPE,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    except OSError:
        return None
