"""Client side of a Flower deployment: the work a SuperNode's ClientApp does for a round.

:func:`train_hosted_clients` runs :func:`fedsim.client.train_client`, the function every
simulation runtime calls, on the clients the SuperNode hosts
(:func:`fedsim.deploy.messages.hosted`). Their states (error-feedback residuals, control
variates) stay on the SuperNode, in the ClientApp's ``context.state``.
"""

from __future__ import annotations

import pickle
from typing import TYPE_CHECKING

import torch

from fedsim.client.task import ClientContext, ClientTask, train_client
from fedsim.data.federated import FederatedData
from fedsim.deploy.messages import BROADCAST, NEW_STATES, PARAMS, RESULT, TASK, UPDATES, hosted
from fedsim.errors import FedsimError
from fedsim.models.functional import FunctionalModel

if TYPE_CHECKING:  # flwr is imported only inside the Flower processes
    from flwr.app import Context, Message

__all__ = ["node_partition", "train_hosted_clients"]

STATES = "fedsim-client-states"  # key of the hosted clients' states in the ClientApp's context.state


def node_partition(context: Context) -> tuple[int, int]:
    """``(partition-id, num-partitions)`` from the SuperNode's ``--node-config``."""
    try:
        pid, num = int(context.node_config["partition-id"]), int(context.node_config["num-partitions"])
    except (KeyError, ValueError) as exc:
        raise FedsimError(
            f"the SuperNode needs integer partition-id and num-partitions in --node-config (got {dict(context.node_config)})"
        ) from exc
    if not 0 <= pid < num:
        raise FedsimError(f"node config partition-id={pid} is outside 0..{num - 1} (num-partitions={num})")
    return pid, num


def train_hosted_clients(
    msg: Message,
    context: Context,
    model: FunctionalModel,
    data: FederatedData,
    seed: int,
) -> Message:
    """The ClientApp's work: train this SuperNode's clients among the message's, reply with their updates."""
    from flwr.app import ArrayRecord, ConfigRecord, Message, RecordDict

    pid, num = node_partition(context)
    if num > data.num_clients:
        raise FedsimError(f"num-partitions={num} exceeds data.num_clients={data.num_clients}: some SuperNodes would host no client")
    meta = msg.content[TASK]
    sent = [int(c) for c in meta["clients"]]
    rnd = int(meta["round"])
    task: ClientTask = pickle.loads(meta["task"])
    params = msg.content[PARAMS].to_torch_state_dict()["params"]
    broadcast = msg.content[BROADCAST].to_torch_state_dict()
    stored = context.state[STATES].to_torch_state_dict() if STATES in context.state else {}

    clients, updates, sizes, losses, bits, steps, new_states = [], [], [], [], [], [], {}
    for client in hosted(sent, pid, num):
        start = params if params.dim() == 1 else params[sent.index(client)]
        prefix = f"{client}/"
        state = {k[len(prefix):]: v for k, v in stored.items() if k.startswith(prefix)}
        x, y = data.client_data(client)
        result = train_client(task, model, start, x, y, ClientContext(seed, rnd, client), state, broadcast)
        stored = {k: v for k, v in stored.items() if not k.startswith(prefix)}
        fresh = {prefix + k: v.detach().cpu().contiguous() for k, v in result.state.items()}
        stored.update(fresh)
        new_states.update(fresh)
        clients.append(client)
        updates.append(result.update.detach().cpu())
        sizes.append(result.num_samples)
        losses.append(result.train_loss)
        bits.append(result.bits_up)
        steps.append(result.steps)

    context.state[STATES] = ArrayRecord(stored)
    dim = params.shape[-1]
    content = RecordDict(
        {
            UPDATES: ArrayRecord({"updates": torch.stack(updates) if updates else torch.zeros(0, dim)}),
            NEW_STATES: ArrayRecord(new_states),
            RESULT: ConfigRecord(
                {
                    "partition-id": pid,
                    "num-partitions": num,
                    "clients": clients,
                    "num-samples": sizes,
                    "train-loss": losses,
                    "bits-up": bits,
                    "steps": steps,
                }
            ),
        }
    )
    return Message(content, reply_to=msg)
