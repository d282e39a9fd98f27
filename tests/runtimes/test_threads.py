"""``runtime.threads``: every runtime kind accepts it, and the runtime (not the config) sets it."""

from __future__ import annotations

import pytest
import torch

from fedsim.config.loading import validate_config
from fedsim.runtimes import SerialRuntime, VectorizedRuntime
from tests.helpers import logistic, tiny_federation


@pytest.fixture
def restore_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("kind", ["serial", "vectorized", "ray"])
def test_every_runtime_kind_accepts_threads(kind: str) -> None:
    cfg = validate_config({"runtime": {"kind": kind, "threads": 2}})
    assert cfg.runtime.threads == 2


def test_validating_a_config_leaves_torch_threads_alone(restore_threads) -> None:
    torch.set_num_threads(3)
    validate_config({"runtime": {"kind": "serial", "threads": 1}})
    assert torch.get_num_threads() == 3


@pytest.mark.parametrize("runtime", [SerialRuntime, VectorizedRuntime])
def test_the_runtime_sets_threads_and_none_leaves_them(runtime, restore_threads) -> None:
    data, model = tiny_federation([4, 4]), logistic()
    torch.set_num_threads(3)
    runtime(model, data, seed=0, threads=None)
    assert torch.get_num_threads() == 3
    runtime(model, data, seed=0, threads=1)
    assert torch.get_num_threads() == 1
