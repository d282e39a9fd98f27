"""Algorithms: what one round does. One module per rule, each reading like its paper's pseudocode."""

from fedsim.algorithms.base import Algorithm, RoundMetrics, ServerState
from fedsim.algorithms.fedavg import FedAvg

__all__ = ["Algorithm", "FedAvg", "RoundMetrics", "ServerState"]
