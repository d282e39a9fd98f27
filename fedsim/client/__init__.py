"""Client work: the pure local-training function and the task that wraps it.

Everything a client does is a function of (parameters, its data, hyperparameters, a seeded
generator, its state). That is what lets one algorithm run serially, vectorized or on Ray, or
inside a Flower ClientApp, with identical results.
"""

from fedsim.client.local import LocalResult, LocalSGD, local_sgd, minibatch_schedule, schedule_shape, sgd_step, sgd_step_
from fedsim.client.state import ClientStateStore
from fedsim.client.task import ClientContext, ClientResult, ClientTask, UpdateTransform, train_client

__all__ = [
    "ClientContext",
    "ClientResult",
    "ClientStateStore",
    "ClientTask",
    "LocalResult",
    "LocalSGD",
    "UpdateTransform",
    "local_sgd",
    "minibatch_schedule",
    "schedule_shape",
    "sgd_step",
    "sgd_step_",
    "train_client",
]
