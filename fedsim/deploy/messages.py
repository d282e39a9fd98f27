"""What the ServerApp and the ClientApps say to each other: record keys and who hosts which client.

Hosting: the SuperNode with node config ``partition-id=p num-partitions=P`` hosts the
federation's clients ``c`` with ``c % P == p``, each with the split fedsim's seeded
partitioner gives it in simulation. With ``P == data.num_clients`` a SuperNode is one client.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["BROADCAST", "NEW_STATES", "PARAMS", "RESULT", "TASK", "UPDATES", "hosted"]

# RecordDict keys: server -> node (PARAMS, BROADCAST, TASK), node -> server (UPDATES, RESULT, NEW_STATES).
PARAMS, BROADCAST, TASK = "fedsim-params", "fedsim-broadcast", "fedsim-task"
UPDATES, RESULT, NEW_STATES = "fedsim-updates", "fedsim-result", "fedsim-new-states"


def hosted(clients: Sequence[int], partition_id: int, num_partitions: int) -> list[int]:
    """The clients among ``clients`` that SuperNode ``partition_id`` of ``num_partitions`` hosts."""
    return [c for c in clients if c % num_partitions == partition_id]
