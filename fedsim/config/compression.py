"""The ``compression`` config section: an uplink and an optional downlink compressor.

Each compressor is a mapping chosen by ``kind`` (the names of :func:`fedsim.compression.build_compressor`)
with that operator's parameters and, on the uplink, an optional error feedback::

    compression:
      uplink: {kind: top_k, ratio: 0.01, feedback: ef}
      downlink: {kind: qsgd, levels: 255}

Parameter ranges are checked by the operators themselves, so the config and the Python API give
the same one-line messages; ``k`` larger than the model is caught once the model is built.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal, Union

from pydantic import Field, model_validator

from fedsim.compression import Compressor, build_compressor
from fedsim.config.base import Section
from fedsim.errors import FedsimError
from fedsim.params import ParamSpec

if TYPE_CHECKING:
    from fedsim.algorithms.base import Algorithm

__all__ = ["CompressionConfig", "CompressorSpec"]


class _Spec(Section):
    feedback: Literal["none", "ef", "ef21"] = Field(
        "none", description="Error feedback: none, ef (EF-SGD, Karimireddy et al. 2019) or ef21 (Richtárik et al. 2021)"
    )

    def params(self) -> dict[str, Any]:
        return self.model_dump(exclude={"kind", "feedback"}, exclude_none=True)

    def build(self, spec: ParamSpec | None = None) -> Compressor:
        """The operator; ``spec`` gives PowerSGD its per-tensor shapes and sizes ``k`` checks."""
        compressor = build_compressor(self.kind, feedback=self.feedback, **self.params(), **self._layout(spec))  # type: ignore[attr-defined]  # every subclass declares kind
        if spec is not None:
            compressor.guarantee(spec.numel)  # k > d and shape mismatches fail here, before any round
        return compressor

    def _layout(self, spec: ParamSpec | None) -> dict[str, Any]:
        return {}

    @model_validator(mode="after")
    def _valid(self) -> "_Spec":
        try:
            self.build()
        except FedsimError as err:
            raise ValueError(str(err)) from None
        return self


class IdentitySpec(_Spec):
    kind: Literal["identity"] = "identity"


class _Sparsifier(_Spec):
    k: int | None = Field(None, description="Coordinates kept (exactly one of k, ratio)")
    ratio: float | None = Field(None, description="Fraction of the d coordinates kept, k = ceil(ratio d)")


class TopKSpec(_Sparsifier):
    kind: Literal["top_k"] = "top_k"


class RandomKSpec(_Sparsifier):
    kind: Literal["random_k"] = "random_k"
    scaled: bool = Field(True, description="Scale by d/k (unbiased); false keeps E[C(x)] = (k/d) x")


class DropoutSpec(_Spec):
    kind: Literal["dropout"] = "dropout"
    p: float = Field(description="Probability of sending the whole message")
    scaled: bool = Field(True, description="Scale a sent message by 1/p (unbiased)")


class QSGDSpec(_Spec):
    kind: Literal["qsgd"] = "qsgd"
    levels: int = Field(description="Quantization levels s >= 1 (q bits: s = 2^q - 1)")


class SignSpec(_Spec):
    kind: Literal["sign"] = "sign"


class PowerSGDSpec(_Spec):
    kind: Literal["powersgd"] = "powersgd"
    rank: int = Field(description="Rank r >= 1 of each weight matrix's approximation")

    def _layout(self, spec: ParamSpec | None) -> dict[str, Any]:
        return {"shapes": spec.shapes if spec is not None else ()}


class SparsifyQuantizeSpec(_Sparsifier):
    kind: Literal["sparsify_quantize"] = "sparsify_quantize"
    levels: int = Field(description="QSGD levels s >= 1 applied to the kept values")
    sparsifier: Literal["top_k", "random_k"] = "top_k"


CompressorSpec = Annotated[
    Union[IdentitySpec, TopKSpec, RandomKSpec, DropoutSpec, QSGDSpec, SignSpec, PowerSGDSpec, SparsifyQuantizeSpec],
    Field(discriminator="kind"),
]


class CompressionConfig(Section):
    """Which compressor each link of a server round uses; both absent means float32 messages."""

    uplink: CompressorSpec | None = Field(None, description="Client -> server: FedAvg deltas, parallel SGD gradients")
    downlink: CompressorSpec | None = Field(None, description="Server -> clients: the model broadcast (EF21-P copy)")

    @model_validator(mode="after")
    def _downlink_has_no_feedback(self) -> "CompressionConfig":
        if self.downlink is not None and self.downlink.feedback != "none":
            raise ValueError(
                f"downlink.feedback={self.downlink.feedback!r}: the downlink already resends what it drops "
                "(it tracks the clients' model copy); allowed: none"
            )
        return self

    @property
    def enabled(self) -> bool:
        return self.uplink is not None or self.downlink is not None

    def wrap(self, algorithm: Algorithm, spec: ParamSpec, seed: int) -> Algorithm:
        """``algorithm`` with its links compressed, or unchanged when the section is empty."""
        if not self.enabled:
            return algorithm
        from fedsim.algorithms.compressed import Compressed

        return Compressed(
            algorithm,
            uplink=self.uplink.build(spec) if self.uplink is not None else None,
            downlink=self.downlink.build(spec) if self.downlink is not None else None,
            seed=seed,
        )
