"""The serial runtime: one client after another, in process, on one device (CPU or CUDA)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from fedsim.client.task import ClientContext, ClientTask, train_client
from fedsim.data.federated import FederatedData
from fedsim.models.functional import FunctionalModel
from fedsim.runtimes.base import CohortResult, Runtime, set_threads

__all__ = ["SerialRuntime"]


class SerialRuntime(Runtime):
    """Trains each client of the cohort in turn with :func:`~fedsim.client.train_client`.

    Data and model move to ``device`` once, at construction. ``threads`` sets torch's intra-op
    threads for this process (``None``: leave them).
    """

    def __init__(
        self, model: FunctionalModel, data: FederatedData, *, seed: int, device: torch.device | str = "cpu", threads: int | None = None
    ) -> None:
        set_threads(threads)
        self.device = torch.device(device)
        super().__init__(model.to(self.device), data.to(self.device), seed=seed)

    def on_device(
        self,
        params: torch.Tensor,
        cohort: Sequence[int],
        states: Sequence[dict[str, torch.Tensor]] | None,
        broadcast: dict[str, torch.Tensor] | None,
    ) -> tuple[torch.Tensor, list[dict[str, torch.Tensor]], dict[str, torch.Tensor]]:
        """The round's inputs moved to this runtime's device (missing states become empty dicts)."""
        moved_states = [{k: v.to(self.device) for k, v in s.items()} for s in states] if states else [{} for _ in cohort]
        return params.to(self.device), moved_states, {k: v.to(self.device) for k, v in (broadcast or {}).items()}

    def run_cohort(
        self,
        task: ClientTask,
        params: torch.Tensor,
        cohort: Sequence[int],
        rnd: int,
        states: Sequence[dict[str, torch.Tensor]] | None = None,
        broadcast: dict[str, torch.Tensor] | None = None,
    ) -> CohortResult:
        params, states, broadcast = self.on_device(params, cohort, states, broadcast)
        data = self.data.for_round(cohort, self.seed, rnd)  # augmented copy of the cohort's samples, if configured
        results = []
        for i, client in enumerate(cohort):
            start = params if params.dim() == 1 else params[i]
            state = states[i]
            x, y = data.client_data(client)
            ctx = ClientContext(self.seed, rnd, client)
            results.append(train_client(task, self.model, start, x, y, ctx, state, broadcast))
        return CohortResult.from_clients(list(cohort), results)
