"""Synchronous parallel SGD: server-based gradient averaging (the FedSGD baseline of McMahan et al.,
"Communication-Efficient Learning of Deep Networks from Decentralized Data", AISTATS 2017).

Each round the server sends ``w_t``, every participating client computes one minibatch gradient
``g_j`` at ``w_t`` and sends it, and the server steps ``w_{t+1} = w_t - eta * sum_j p_j g_j``
(``p_j = 1/K``, or sample-weighted). With M clients of batch B this is single-machine minibatch
SGD with batch M*B.
"""

from __future__ import annotations

from fedsim.algorithms.fedavg import FedAvg
from fedsim.algorithms.sampling import FullParticipation, Participation
from fedsim.algorithms.schedules import LRSchedule
from fedsim.client.local import LocalSGD
from fedsim.client.state import ClientStateStore
from fedsim.client.task import ClientTask, UpdateTransform

__all__ = ["ParallelSGD"]


class ParallelSGD(FedAvg):
    """Synchronous parallel (minibatch) SGD, the gradient form of eq. (255).

    A client's reply is its negated minibatch gradient ``-g_j``: one local step of unit step
    size from ``w_t`` (plus ``lambda w_t`` with weight decay). The server applies the step size,
    ``w_{t+1} = w_t + eta * sum_j p_j (-g_j)``. FedAvg with one local step of size ``eta`` and
    server rate 1 is the model form of the same equation; both must agree to rounding.

    Parameters
    ----------
    num_clients : int
        Number of clients K.
    lr : float
        Step size eta.
    batch_size : int
        Each client's minibatch size B.
    weight_decay : float (default: 0.0)
        L2 penalty lambda/2 ||w||^2 in every client's objective.
    participation : Participation (default: FullParticipation())
        Which clients compute a gradient each round.
    weighting : {"samples", "uniform"} (default: "uniform")
        Gradient weights p_j; uniform is 1/K.
    lr_schedule : LRSchedule (default: constant)
        Round-indexed factor on ``lr``.
    transforms : tuple of UpdateTransform (default: ())
        Client-side transforms (compression, clipping) applied to the sent gradient.
    seed : int (default: 0)
        Root seed.
    client_states : ClientStateStore or None (default: None)
        Store for stateful transforms (error feedback).
    """

    def __init__(
        self,
        *,
        num_clients: int,
        lr: float,
        batch_size: int,
        weight_decay: float = 0.0,
        participation: Participation = FullParticipation(),
        weighting: str = "uniform",
        lr_schedule: LRSchedule = LRSchedule(),
        transforms: tuple[UpdateTransform, ...] = (),
        seed: int = 0,
        client_states: ClientStateStore | None = None,
    ) -> None:
        gradient_task = ClientTask(LocalSGD(lr=1.0, batch_size=batch_size, steps=1, weight_decay=weight_decay), transforms)
        super().__init__(
            num_clients=num_clients,
            task=gradient_task,
            server_lr=lr,
            weighting=weighting,
            seed=seed,
            participation=participation,
            server_lr_schedule=lr_schedule,
            client_states=client_states,
        )
