"""Communication compression around a server-based algorithm, configured rather than coded into it.

:class:`Compressed` wraps any algorithm of the FedAvg family (FedAvg, FedProx, SCAFFOLD, server
optimizers, parallel SGD): it appends the uplink compressor to the clients' update transforms,
routes the broadcast through a :class:`~fedsim.compression.links.Downlink`, and reports the bytes
each link really carried next to what uncompressed float32 messages would have cost.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from fedsim.algorithms.base import Algorithm, RoundMetrics, ServerState
from fedsim.algorithms.fedavg import FedAvg
from fedsim.client.task import FLOAT_BITS, ClientTask
from fedsim.compression.base import Compressor
from fedsim.compression.links import Downlink, UplinkCompression
from fedsim.errors import FedsimError
from fedsim.runtimes.base import CohortResult, Runtime

__all__ = ["Compressed"]


class _BroadcastRuntime(Runtime):
    """Hands the cohort the downlink's model copy instead of the server's parameters.

    Only ``run_cohort`` passes through: the wrapped runtime stays opaque (no model or data here).
    """

    def __init__(self, inner: Runtime, downlink: Downlink) -> None:  # Runtime.__init__ skipped on purpose
        self.inner = inner
        self.downlink = downlink
        self.bits_down = 0
        self.float32_bits_down = 0

    def run_cohort(
        self,
        task: ClientTask,
        params: torch.Tensor,
        cohort: Sequence[int],
        rnd: int,
        states: Sequence[dict[str, torch.Tensor]] | None = None,
        broadcast: dict[str, torch.Tensor] | None = None,
    ) -> CohortResult:
        copy, bits = self.downlink.broadcast(params, cohort, rnd)
        self.bits_down += bits
        self.float32_bits_down += FLOAT_BITS * params.numel() * len(cohort)
        return self.inner.run_cohort(task, copy, cohort, rnd, states, broadcast)


class Compressed(Algorithm):
    """A server-based algorithm whose uplink and/or downlink messages are compressed.

    Parameters
    ----------
    inner : FedAvg
        The algorithm (any FedAvg subclass); its client task gains the uplink transform.
    uplink : Compressor or None
        Applied by every client to its update (FedAvg delta, or parallel SGD's gradient), after
        the task's own transforms (clipping, noise).
    downlink : Compressor or None
        Applied by the server to the model broadcast (:class:`~fedsim.compression.links.Downlink`).
    seed : int
        Root seed of the downlink's randomness.
    """

    def __init__(self, inner: Algorithm, *, uplink: Compressor | None, downlink: Compressor | None, seed: int) -> None:
        if not isinstance(inner, FedAvg):
            raise FedsimError(
                f"compression: the compression section applies to the server-based algorithms (fedavg family, "
                f"parallel SGD), not {type(inner).__name__}; decentralized CHOCO-SGD takes algorithm.compressor"
            )
        if uplink is not None:
            inner.task = inner.task.with_transform(UplinkCompression(uplink))
        self.inner = inner
        self.uplink = uplink
        self.downlink = Downlink(downlink, seed) if downlink is not None else None
        self.totals = {"bytes_up": 0, "bytes_down": 0, "bytes_up_float32": 0, "bytes_down_float32": 0}

    def __getattr__(self, name: str) -> Any:
        # Everything not about compression (task, client_states, sample, ...) is the inner algorithm's.
        return getattr(self.__dict__["inner"], name)

    def init(self, params: torch.Tensor) -> ServerState:
        return self.inner.init(params)

    def round(self, state: ServerState, rnd: int, runtime: Runtime) -> RoundMetrics:
        dim = self.dim = state.params.numel()
        link = _BroadcastRuntime(runtime, self.downlink) if self.downlink is not None else None
        metrics = self.inner.round(state, rnd, link or runtime)
        up_float32 = metrics.clients * dim * FLOAT_BITS // 8
        down_float32 = metrics.clients * dim * FLOAT_BITS // 8
        if link is not None:
            # Only the model goes through the downlink; other broadcast tensors (SCAFFOLD's c) stay float32.
            metrics.bytes_down += (link.bits_down - link.float32_bits_down) // 8
        metrics.extra.update(bytes_up_float32=up_float32, bytes_down_float32=down_float32)
        for key, value in (("bytes_up", metrics.bytes_up), ("bytes_down", metrics.bytes_down),
                           ("bytes_up_float32", up_float32), ("bytes_down_float32", down_float32)):
            self.totals[key] += value
        return metrics

    def stop_reason(self, rnd: int) -> str | None:
        return self.inner.stop_reason(rnd)

    def eval_params(self, state: ServerState) -> torch.Tensor:
        return self.inner.eval_params(state)

    def evaluate_extra(self, state: ServerState, evaluate: Callable[[torch.Tensor], tuple[float, float]]) -> dict[str, float]:
        return self.inner.evaluate_extra(state, evaluate)

    def summary(self) -> dict[str, object]:
        t = self.totals
        return {
            **self.inner.summary(),
            "compression": {
                "uplink": _describe(self.uplink),
                # Which operator error feedback applies (rescaled C / (1 + omega) when C is not a contraction).
                "uplink_feedback": self.uplink.note(self.dim) if self.uplink is not None and hasattr(self.uplink, "note") and "dim" in self.__dict__ else None,
                "downlink": _describe(self.downlink.compressor if self.downlink else None),
                **t,
                "bytes_up_ratio": t["bytes_up"] / t["bytes_up_float32"] if t["bytes_up_float32"] else None,
                "bytes_down_ratio": t["bytes_down"] / t["bytes_down_float32"] if t["bytes_down_float32"] else None,
            },
        }

    def state_dict(self) -> dict[str, Any]:
        return {
            **self.inner.state_dict(),
            "compression_totals": dict(self.totals),
            "downlink": self.downlink.state_dict() if self.downlink else None,
        }

    def load_state_dict(self, sd: dict[str, Any]) -> None:
        sd = dict(sd)
        self.totals = dict(sd.pop("compression_totals"))
        downlink = sd.pop("downlink")
        if self.downlink is not None and downlink is not None:
            self.downlink.load_state_dict(downlink)
        self.inner.load_state_dict(sd)


def _describe(compressor: Compressor | None) -> str | None:
    return None if compressor is None else repr(compressor)
