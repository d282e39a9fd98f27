"""The one base class of every config section, and what a section's ``build()`` may use.

Every section forbids unknown keys (a typo is an error naming the key, not a silently ignored
setting) and rejects ``inf`` and ``nan`` in float fields (a non-finite learning rate or budget is
never what the user meant).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    from fedsim.config.privacy import PrivacyConfig
    from fedsim.config.systems import SystemsConfig
    from fedsim.config.topology import TopologySection
    from fedsim.data.federated import FederatedData
    from fedsim.params import ParamSpec

__all__ = ["BuildContext", "Section"]


class Section(BaseModel):
    """Base of every config section: unknown keys and non-finite floats are refused."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


@dataclass(frozen=True, kw_only=True)
class BuildContext:
    """What an algorithm section's ``build()`` may use besides its own keys.

    Parameters
    ----------
    seed : int
        The experiment seed.
    data : FederatedData
        The federation (client count and sizes).
    spec : ParamSpec, optional
        The model's parameter layout (tensor shapes in flattening order): what an algorithm
        needs of the model (per-tensor smoothing), so that it never reads the runtime's.
    topology : TopologySection, optional
        The ``topology:`` section; decentralized rules default to a ring without it.
    privacy : PrivacyConfig, optional
        The ``privacy:`` section, required by the private algorithms.
    systems : SystemsConfig, optional
        The ``systems:`` section: with it, rounds run on a simulated clock.
    """

    seed: int
    data: FederatedData
    spec: ParamSpec | None = None
    topology: TopologySection | None = None
    privacy: PrivacyConfig | None = None
    systems: SystemsConfig | None = None
