"""Gossip on the (n, d) tensor of all nodes' parameters: one (sparse) matrix product per step.

Row i of ``X`` is node i's flat parameter vector; a gossip step is ``X <- W @ X`` (see
:mod:`fedsim.topology.mixing` for the orientation of W). These functions are the matrix forms
of gossip averaging (Xiao and Boyd, "Fast Linear Iterations for Distributed Averaging" (2004)) and of CHOCO-SGD; the per-node loops exist only in tests and benchmarks.
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.sparse as sp
import torch

__all__ = ["to_torch", "gossip", "consensus_distance", "choco_consensus", "SPARSE_DENSITY"]

SPARSE_DENSITY = 0.25
"""Above this fraction of nonzeros a dense product beats the sparse kernels, so W is kept dense."""


def to_torch(matrix: sp.sparray, *, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """W as a torch tensor: sparse CSR when sparse enough, dense otherwise (complete graphs, parametric W)."""
    matrix = sp.csr_array(matrix)
    n = matrix.shape[0]
    if matrix.nnz > SPARSE_DENSITY * n * n:
        return torch.as_tensor(matrix.toarray(), dtype=dtype, device=device)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")  # stable for W @ X
        return torch.sparse_csr_tensor(
            torch.as_tensor(matrix.indptr.astype(np.int64)),
            torch.as_tensor(matrix.indices.astype(np.int64)),
            torch.as_tensor(matrix.data),
            size=matrix.shape,
            dtype=dtype,
            device=device,
            check_invariants=True,
        )


def gossip(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """One averaging step $X^{t+1} = W X^t$ on the (n, d) node matrix (Xiao and Boyd 2004; nodes as rows)."""
    return w @ x


def consensus_distance(x: torch.Tensor) -> float:
    """Consensus error $e_t = \\frac1n \\sum_i \\|x_i - \\bar x\\|^2$ (Koloskova et al. 2019), in float64."""
    x = x.double()
    return float(((x - x.mean(dim=0)) ** 2).sum() / x.shape[0])


def choco_consensus(x_half: torch.Tensor, x_hat: torch.Tensor, w: torch.Tensor, gamma: float) -> torch.Tensor:
    """CHOCO-SGD's consensus step $x_i \\leftarrow x_i^{t+1/2} + \\gamma \\sum_j w_{ij}(\\hat x_j - \\hat x_i)$.

    Because rows of W sum to 1, $\\sum_j w_{ij}(\\hat x_j - \\hat x_i) = (W\\hat X)_i - \\hat x_i$, one
    product for all nodes (Koloskova, Stich and Jaggi, ICML 2019, Algorithm 2 (CHOCO-SGD); Algorithm 1
    is CHOCO-Gossip, the same step without local SGD).
    """
    return x_half + gamma * (w @ x_hat - x_hat)
