"""One intra-op thread for these tests: their tensors are small, and on a busy two-core machine
torch's thread pool makes a 50x784 step ~25x slower than running it on one thread."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
