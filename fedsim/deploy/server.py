"""Server side of a Flower deployment: a fedsim runtime whose clients are Flower SuperNodes.

:class:`FlowerRuntime` is an ordinary :class:`~fedsim.runtimes.base.Runtime`: the algorithm's
round calls ``run_cohort`` exactly as in simulation, and the runtime sends the cohort's work to
the SuperNodes through the ServerApp's ``Grid`` (:mod:`fedsim.deploy.client` runs it there).
Nothing about an algorithm, compression or privacy is implemented twice: the
:class:`~fedsim.client.ClientTask` the algorithm built travels to the SuperNode pickled, as it
travels to Ray actors.

A SuperNode gets every sampled client's id (the server learns each node's partition from its
first answer, see :func:`fedsim.deploy.messages.hosted`) and trains those it hosts.

A SuperNode that answers with an error, or not within ``flower.round_timeout_s``, is dropped
for the rest of the run; its clients are missing from the round (the metrics row records how
many answered). Fewer than ``flower.min_nodes`` live SuperNodes for ``flower.node_wait_s``
ends the run with a one-line error.
"""

from __future__ import annotations

import pickle
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import torch

from fedsim.client.task import ClientResult, ClientTask
from fedsim.config.runtime import FlowerConfig
from fedsim.data.federated import FederatedData
from fedsim.deploy.messages import BROADCAST, NEW_STATES, PARAMS, RESULT, TASK, UPDATES, hosted
from fedsim.errors import FedsimError
from fedsim.models.functional import FunctionalModel
from fedsim.runtimes.base import CohortResult, Runtime

if TYPE_CHECKING:  # flwr is imported only inside the Flower processes
    from flwr.app import Message
    from flwr.serverapp import Grid

__all__ = ["FlowerRuntime"]

_PULL_EVERY_S = 0.2  # Grid.send_and_receive sleeps 3 s between pulls; a round waits for the slowest node anyway


class FlowerRuntime(Runtime):
    """Runs each cohort on the live SuperNodes of a Flower run (used inside the ServerApp).

    Parameters
    ----------
    grid : flwr.serverapp.Grid
        The ServerApp's grid.
    model, data, seed
        As for every runtime; the data serves the server's evaluation only.
    settings : FlowerConfig
        ``min_nodes``, ``node_wait_s`` and ``round_timeout_s``.
    log : callable (default: print)
        Receives one line per notable event (a dropped SuperNode).
    """

    def __init__(
        self,
        grid: Grid,
        model: FunctionalModel,
        data: FederatedData,
        *,
        seed: int,
        settings: FlowerConfig,
        log: Callable[[str], None] = print,
    ) -> None:
        super().__init__(model, data, seed=seed)
        self.grid = grid
        self.settings = settings
        self.log = log
        self.partitions: dict[int, tuple[int, int]] = {}
        self.dropped: dict[int, str] = {}
        self.seen: set[int] = set()
        self.rnd = 0
        self.round_report: dict[str, int] = {}
        self._answering: set[int] = set()
        self._report_round = -1

    def live_nodes(self) -> list[int]:
        """Connected SuperNodes not dropped; one that was seen and has left is recorded as dropped."""
        connected = set(self.grid.get_node_ids())
        for node in sorted(self.seen - connected - set(self.dropped)):
            self._drop(node, self.rnd, "disconnected from the SuperLink")
        self.seen |= connected
        return sorted(connected - set(self.dropped))

    def wait_for_nodes(self, count: int, why: str) -> list[int]:
        """Live SuperNode ids once at least ``count`` are connected; FedsimError after ``node_wait_s``."""
        deadline = time.monotonic() + self.settings.node_wait_s
        while len(nodes := self.live_nodes()) < count:
            if time.monotonic() > deadline:
                raise FedsimError(
                    f"only {len(nodes)} live SuperNode(s) after waiting {self.settings.node_wait_s:g} s "
                    f"(flower.node_wait_s), {why} needs {count}"
                )
            time.sleep(_PULL_EVERY_S)
        return nodes

    def run_cohort(
        self,
        task: ClientTask,
        params: torch.Tensor,
        cohort: Sequence[int],
        rnd: int,
        states: Sequence[dict[str, torch.Tensor]] | None = None,
        broadcast: dict[str, torch.Tensor] | None = None,
    ) -> CohortResult:
        from flwr.app import ArrayRecord, ConfigRecord, Message, MessageType, RecordDict

        del states  # client state lives on the SuperNodes (context.state), not on the server
        cohort = list(cohort)
        self.rnd = rnd
        nodes = self.wait_for_nodes(self.settings.min_nodes, "flower.min_nodes")
        try:
            task_bytes = pickle.dumps(task)
        except (pickle.PicklingError, AttributeError, TypeError) as exc:
            raise FedsimError(f"this algorithm's client task cannot be sent to SuperNodes: {exc}") from exc
        broadcast_record = ArrayRecord({k: v.detach().cpu().contiguous() for k, v in (broadcast or {}).items()})
        messages, targets = [], []
        for node in nodes:
            clients = hosted(cohort, *self.partitions[node]) if node in self.partitions else cohort
            if not clients:
                continue
            rows = params if params.dim() == 1 else params[[cohort.index(c) for c in clients]]
            content = RecordDict(
                {
                    PARAMS: ArrayRecord({"params": rows.detach().cpu().contiguous()}),
                    BROADCAST: broadcast_record,
                    TASK: ConfigRecord({"round": rnd, "clients": clients, "task": task_bytes}),
                }
            )
            messages.append(Message(content, dst_node_id=node, message_type=MessageType.TRAIN, group_id=str(rnd)))
            targets.append(node)
        replies = self._exchange(messages, targets, rnd)

        answers: dict[int, ClientResult] = {}
        for node, reply in replies.items():
            meta = reply.content[RESULT]
            self.partitions[node] = (int(meta["partition-id"]), int(meta["num-partitions"]))
            updates = reply.content[UPDATES]["updates"].numpy()
            new_states = reply.content[NEW_STATES].to_torch_state_dict()
            for i, client in enumerate(int(c) for c in meta["clients"]):
                prefix = f"{client}/"
                answers.setdefault(
                    client,
                    ClientResult(
                        torch.from_numpy(updates[i].copy()),
                        int(meta["num-samples"][i]),
                        float(meta["train-loss"][i]),
                        int(meta["bits-up"][i]),
                        int(meta["steps"][i]),
                        {k[len(prefix):]: v for k, v in new_states.items() if k.startswith(prefix)},
                    ),
                )
        if not answers:
            raise FedsimError(f"round {rnd + 1}: no SuperNode answered (dropped: {self._dropped_text()})")
        if params.dim() == 2 and len(answers) < len(cohort):
            missing = sorted(set(cohort) - set(answers))
            raise FedsimError(
                f"round {rnd + 1}: decentralized nodes {missing} did not answer; server-relayed gossip needs every node "
                f"(dropped SuperNodes: {self._dropped_text()})"
            )
        self._report(rnd, replies, len(cohort), len(answers))
        clients = sorted(answers)
        return CohortResult.from_clients(clients, [answers[c] for c in clients])

    def _report(self, rnd: int, replies: dict[int, Message], sampled: int, answered: int) -> None:
        """Participation of the round so far (an algorithm may run several cohorts per round)."""
        if self._report_round != rnd:
            self._report_round, self._answering = rnd, set()
            self.round_report = {"clients_sampled": 0, "clients_dropped": 0}
        self._answering |= set(replies)
        self.round_report["supernodes"] = len(self._answering)
        self.round_report["clients_sampled"] += sampled
        self.round_report["clients_dropped"] += sampled - answered

    def _exchange(self, messages: list[Message], targets: list[int], rnd: int) -> dict[int, Message]:
        """Push, then pull until every node answered or ``round_timeout_s`` passed; drop the rest."""
        ids = list(self.grid.push_messages(messages))
        pending = {mid: node for mid, node in zip(ids, targets) if mid}
        replies: dict[int, Message] = {}
        deadline = time.monotonic() + self.settings.round_timeout_s
        while pending and time.monotonic() < deadline:
            for reply in self.grid.pull_messages(list(pending)):
                node = pending.pop(reply.metadata.reply_to_message_id, None)
                if node is None:
                    continue
                if reply.has_error():
                    self._drop(node, rnd, f"error {reply.error.code}: {reply.error.reason}")
                else:
                    replies[node] = reply
            if pending:
                time.sleep(_PULL_EVERY_S)
        for node in pending.values():
            self._drop(node, rnd, f"no answer within {self.settings.round_timeout_s:g} s (flower.round_timeout_s)")
        for mid, node in zip(ids, targets):
            if not mid:
                self._drop(node, rnd, "the SuperLink refused the message")
        return replies

    def _drop(self, node: int, rnd: int, reason: str) -> None:
        reason = " ".join(reason.split())
        self.dropped[node] = f"round {rnd + 1}: {reason}"
        self.log(f"SuperNode {node} dropped in round {rnd + 1}: {reason}")

    def _dropped_text(self) -> str:
        return "; ".join(f"{node} ({why})" for node, why in self.dropped.items()) or "none"

    def summary(self) -> dict[str, Any]:
        """Entries for summary.json: which SuperNodes were dropped, when and why."""
        return {"dropped_supernodes": {str(node): why for node, why in self.dropped.items()}}
