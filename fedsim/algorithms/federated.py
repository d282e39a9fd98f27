"""The federated (server-based) family in one namespace, for the config layer and users.

Parallel SGD, FedAvg and its participation, schedule and local-work options, FedProx, the
server optimizers of Reddi et al. 2021, SCAFFOLD and FedNova.
"""

from fedsim.algorithms.fedavg import FedAvg
from fedsim.algorithms.fednova import FedNova
from fedsim.algorithms.fedopt import FedAdagrad, FedAdam, FedAvgM, FedOpt, FedYogi
from fedsim.algorithms.fedprox import FedProx
from fedsim.algorithms.heterogeneity import LocalWork
from fedsim.algorithms.parallel_sgd import ParallelSGD
from fedsim.algorithms.sampling import FullParticipation, PoissonSampling, UniformSampling
from fedsim.algorithms.scaffold import Scaffold, ScaffoldTask
from fedsim.algorithms.schedules import LRSchedule

__all__ = [
    "FedAdagrad",
    "FedAdam",
    "FedAvg",
    "FedAvgM",
    "FedNova",
    "FedOpt",
    "FedProx",
    "FedYogi",
    "FullParticipation",
    "LRSchedule",
    "LocalWork",
    "ParallelSGD",
    "PoissonSampling",
    "Scaffold",
    "ScaffoldTask",
    "UniformSampling",
]
