"""Second largest eigenvalue modulus and spectral gap of mixing matrices (the gap as defined by
Koloskova, Stich and Jaggi, "Decentralized Stochastic Optimization and Gossip Algorithms with
Compressed Communication" (ICML 2019))."""

from __future__ import annotations

from collections.abc import Sequence
from functools import reduce

import numpy as np
import scipy.sparse as sp

from fedsim.errors import FedsimError

__all__ = ["second_eigenvalue_modulus", "spectral_gap", "period_product", "DENSE_LIMIT"]

DENSE_LIMIT = 3000
"""Largest n solved by a dense eigendecomposition; beyond it a sparse Krylov solver is used."""


def _as_sparse(matrix: np.ndarray | sp.sparray) -> sp.csr_array:
    matrix = sp.csr_array(matrix)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise FedsimError(f"mixing matrix must be square, got shape {matrix.shape}")
    return matrix


def _is_symmetric(matrix: sp.csr_array) -> bool:
    return matrix.nnz == 0 or abs(matrix - matrix.T).max() <= 1e-12


def _dense_slem(matrix: sp.csr_array) -> float:
    dense = matrix.toarray()
    if _is_symmetric(matrix):
        moduli = np.abs(np.linalg.eigvalsh(dense))
    else:
        moduli = np.abs(np.linalg.eigvals(dense))
    moduli.sort()
    return float(moduli[-2])


def _sparse_slem(matrix: sp.csr_array) -> float:
    """$\\|W - \\mathbf{1}\\mathbf{1}^\\top/n\\|$'s top eigenvalue modulus by Lanczos / Arnoldi.

    Deflating the consensus direction turns "second largest" into "largest", which Krylov
    solvers find reliably; it assumes $W\\mathbf{1} = \\mathbf{1}$ and $\\mathbf{1}^\\top W =
    \\mathbf{1}^\\top$ (checked by the validator), under which the deflated spectrum is the
    spectrum of W with one eigenvalue 1 removed.
    """
    from scipy.sparse.linalg import LinearOperator, eigs, eigsh

    n = matrix.shape[0]
    symmetric = _is_symmetric(matrix)
    op = LinearOperator((n, n), matvec=lambda v: matrix @ v - v.mean(axis=0), dtype=np.float64)
    v0 = np.cos(np.arange(n) * 0.7071)  # fixed start vector: no hidden RNG
    if symmetric:
        values = eigsh(op, k=1, which="LM", v0=v0, tol=1e-10, maxiter=20 * n)
    else:
        values = eigs(op, k=1, which="LM", v0=v0, tol=1e-10, maxiter=20 * n)
    return float(np.abs(values[0]).max())


def second_eigenvalue_modulus(matrix: np.ndarray | sp.sparray, method: str = "auto") -> float:
    """$|\\lambda_2(W)| = \\max(|\\lambda_2|, |\\lambda_n|)$, the second largest modulus over the whole spectrum.

    Parameters
    ----------
    matrix : (n, n) array or sparse array
        A doubly stochastic mixing matrix.
    method : {"auto", "dense", "sparse"}
        ``dense`` uses ``eigvalsh`` (``eigvals`` if not symmetric); ``sparse`` uses
        ``eigsh``/``eigs`` on the deflated operator; ``auto`` is dense up to
        :data:`DENSE_LIMIT` nodes.
    """
    matrix = _as_sparse(matrix)
    if method not in ("auto", "dense", "sparse"):
        raise FedsimError(f"spectral method {method!r} unknown; choose auto, dense or sparse")
    if matrix.shape[0] == 1:
        return 0.0
    if method == "dense" or (method == "auto" and matrix.shape[0] <= DENSE_LIMIT):
        return _dense_slem(matrix)
    return _sparse_slem(matrix)


def spectral_gap(matrix: np.ndarray | sp.sparray, method: str = "auto") -> float:
    """Spectral gap $\\rho = 1 - |\\lambda_2(W)|$ (Koloskova et al. 2019), clipped to ``[0, 1]``.

    $\\rho = 1$ for $W = \\mathbf{1}\\mathbf{1}^\\top/n$ and $\\rho = 0$ for a disconnected graph.
    For symmetric W the consensus error contracts as $e_{t+1} \\le (1-\\rho)^2 e_t$.

    Examples
    --------
    >>> import numpy as np
    >>> round(spectral_gap(np.full((4, 4), 0.25)), 12)
    1.0
    """
    return min(1.0, max(0.0, 1.0 - second_eigenvalue_modulus(matrix, method)))


def period_product(matrices: Sequence[sp.sparray]) -> sp.csr_array:
    """$W^{(\\tau-1)} \\cdots W^{(1)} W^{(0)}$: the map ``X -> W_t @ X`` applied over one period."""
    return sp.csr_array(reduce(lambda acc, w: sp.csr_array(w) @ acc, matrices[1:], sp.csr_array(matrices[0])))
