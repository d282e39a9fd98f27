"""The ``sweep:`` section: a grid of config keys, groups of keys that vary together, and seeds.

``fedsim run`` ignores it; ``fedsim sweep`` expands it (see :mod:`fedsim.studies.sweep`). A grid
key is a dotted config key (``algorithm.lr``) mapped to the list of values it takes; every
combination of grid values is run, and each ``zip`` group adds one factor whose keys move
together (their lists have one length). Every grid point runs once per seed.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, NonNegativeFloat, NonNegativeInt, PositiveFloat, PositiveInt, model_validator
from pydantic_core import PydanticCustomError

from fedsim.config.base import Section

__all__ = ["SweepConfig", "TrialResources"]


class TrialResources(Section):
    cpus: PositiveFloat = Field(1, description="CPUs reserved per trial (Ray Tune); also the trial's torch threads (rounded, at least 1)")
    gpus: NonNegativeFloat = Field(0, description="GPU fraction per trial (Ray Tune only)")


class SweepConfig(Section):
    """What ``fedsim sweep`` runs; the command line's ``--grid``/``--zip``/``--seeds`` add to or replace it."""

    grid: dict[str, list[Any]] = Field(default_factory=dict, description="Dotted key -> values; every combination is run")
    zip: list[dict[str, list[Any]]] = Field(default_factory=list, description="Groups of keys whose values vary together")
    seeds: list[NonNegativeInt] | None = Field(None, description="Seeds of every grid point (default: the config's seed)")
    parallel: PositiveInt | None = Field(None, description="Trials at once (default: Ray Tune fills the cluster; the pool: 1)")
    max_failures: NonNegativeInt = Field(0, description="Retries of a failed trial before it is reported as failed")
    resources: TrialResources = Field(default_factory=TrialResources)

    @model_validator(mode="after")
    def _well_formed(self) -> "SweepConfig":
        seen: set[str] = set()
        for group in [self.grid, *self.zip]:
            for key, values in group.items():
                if key in seen:
                    raise PydanticCustomError("fedsim", "sweep: key {key} appears twice in grid/zip", {"key": key})
                seen.add(key)
                if not values:
                    raise PydanticCustomError("fedsim", "sweep: key {key} has no values", {"key": key})
                if key == "seed" or key.startswith(("output.dir", "sweep")):
                    raise PydanticCustomError("fedsim", "sweep: key {key} cannot be swept (seeds: use sweep.seeds / --seeds; "
                                              "output.dir: each trial has its own folder)", {"key": key})
        for group in self.zip:
            lengths = {k: len(v) for k, v in group.items()}
            if len(set(lengths.values())) > 1:
                raise PydanticCustomError("fedsim", "sweep.zip: keys of one group need lists of one length, got {lengths}",
                                          {"lengths": ", ".join(f"{k}: {n}" for k, n in lengths.items())})
        if self.seeds is not None and (not self.seeds or len(set(self.seeds)) < len(self.seeds)):
            raise PydanticCustomError("fedsim", "sweep.seeds: give distinct seeds, got {seeds}", {"seeds": self.seeds})
        return self
