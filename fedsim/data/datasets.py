"""The data sets behind ``data.dataset``: one :class:`Dataset` record per set, whatever its source.

A :class:`Dataset` holds flat training and test arrays plus what a model needs to fit them (the
input shape, the class count, the kind of input) and, for sets with natural clients (LEAF's
writers and roles, Synthetic's devices, a custom ``client_id``), each training sample's client.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from fedsim.errors import FedsimError
from fedsim.seeding import numpy_generator

__all__ = ["DATASETS", "Dataset", "load_dataset"]

DATASETS = ("mnist", "fashion_mnist", "femnist", "shakespeare", "cifar10", "cifar100", "synthetic", "custom")


@dataclass
class Dataset:
    """A data set ready to partition.

    ``x_*`` are flat ``(N, prod(input_shape))`` float32 (``kind`` image or vector) or int64 token
    ids (``kind`` sequence, ``vocab_size`` of them); labels are int64 in ``[0, num_classes)``.
    ``client_id[i]`` is training sample i's natural client (index into ``client_names``), or None.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    input_shape: tuple[int, ...]
    num_classes: int
    kind: Literal["image", "vector", "sequence"]
    client_id: np.ndarray | None = None
    client_names: list[str] | None = None
    vocab_size: int | None = None

    def describe(self) -> str:
        shape = "x".join(map(str, self.input_shape))
        return f"{self.name} ({self.kind} {shape}, {self.num_classes} classes)"

    @classmethod
    def from_arrays(
        cls,
        x: Any,
        y: Any,
        *,
        client_id: Any = None,
        x_test: Any = None,
        y_test: Any = None,
        test_fraction: float = 0.2,
        seed: int = 0,
        name: str = "custom",
    ) -> "Dataset":
        """A data set from user arrays (numpy or torch): images ``(N, C, H, W)`` or ``(N, H, W)``,
        feature vectors ``(N, d)`` (float) or token sequences ``(N, T)`` (integer).

        Without ``x_test``/``y_test``, a seeded ``test_fraction`` of the samples is held out.
        """
        x, y = _numpy(x, "x"), _numpy(y, "y")
        if len(x) != len(y) or y.ndim != 1:
            raise FedsimError(f"{name}: x has {len(x)} rows and y shape {y.shape}; need one label per sample (y of shape (N,))")
        if np.issubdtype(y.dtype, np.floating) and not np.all(y == np.round(y)) or (len(y) and y.min() < 0):
            raise FedsimError(f"{name}: y must hold class indices 0..C-1")
        cid = None if client_id is None else _numpy(client_id, "client_id")
        if cid is not None and len(cid) != len(y):
            raise FedsimError(f"{name}: client_id has {len(cid)} entries for {len(y)} samples")
        if (x_test is None) != (y_test is None):
            raise FedsimError(f"{name}: give both x_test and y_test, or neither")
        if x_test is None:
            if not 0 < test_fraction < 1:
                raise FedsimError(f"data.test_fraction: must be in (0, 1) when the data has no test arrays, got {test_fraction}")
            perm = numpy_generator(seed, "custom_test_split").permutation(len(y))
            n_test = max(1, int(round(test_fraction * len(y))))
            test, train = np.sort(perm[:n_test]), np.sort(perm[n_test:])
            xt, yt, x, y = x[test], y[test], x[train], y[train]
            cid = None if cid is None else cid[train]
        else:
            xt, yt = _numpy(x_test, "x_test"), _numpy(y_test, "y_test")
        if np.issubdtype(x.dtype, np.integer) and x.ndim == 2:
            kind: Literal["image", "vector", "sequence"] = "sequence"
            shape: tuple[int, ...] = (x.shape[1],)
            vocab = int(max(x.max(initial=0), xt.max(initial=0))) + 1
        elif x.ndim in (3, 4):
            kind, shape, vocab = "image", (1, *x.shape[1:]) if x.ndim == 3 else tuple(x.shape[1:]), None
        elif x.ndim == 2:
            kind, shape, vocab = "vector", (x.shape[1],), None
        else:
            raise FedsimError(f"{name}: x of shape {x.shape} (allowed: (N, d) features or tokens, (N, H, W) or (N, C, H, W) images)")
        if tuple(xt.shape[1:]) != tuple(x.shape[1:]):
            raise FedsimError(f"{name}: x_test rows have shape {xt.shape[1:]}, x rows {x.shape[1:]}")
        names = None
        if cid is not None:
            names_arr, cid = np.unique(cid, return_inverse=True)
            names = [str(n) for n in names_arr]
        flat = (lambda a: a.reshape(len(a), -1).astype(np.int64)) if kind == "sequence" else (lambda a: a.reshape(len(a), -1).astype(np.float32))
        classes = int(max(y.max(initial=0), yt.max(initial=0))) + 1
        return cls(name, flat(x), y.astype(np.int64), flat(xt), yt.astype(np.int64), shape, classes, kind,
                   None if cid is None else cid.astype(np.int64), names, vocab)


def _numpy(a: Any, what: str) -> np.ndarray:
    if hasattr(a, "detach"):  # a torch tensor
        a = a.detach().cpu().numpy()
    try:
        return np.asarray(a)
    except Exception as exc:
        raise FedsimError(f"custom data: {what} is not an array ({exc})") from None


def _load_custom(path: str | None, seed: int, test_fraction: float) -> Dataset:
    if not path:
        raise FedsimError("data.path: required for data.dataset=custom (a .npz or .pt file with x, y and optionally client_id, x_test, y_test)")
    p = Path(path).expanduser()
    if not p.is_file():
        raise FedsimError(f"data.path: {p} does not exist")
    try:
        if p.suffix == ".npz":
            with np.load(p, allow_pickle=False) as z:
                blob = {k: z[k] for k in z.files}
        elif p.suffix == ".pt":
            import torch

            blob = torch.load(p, map_location="cpu", weights_only=True)
        else:
            raise FedsimError(f"data.path: {p} must end in .npz or .pt")
    except FedsimError:
        raise
    except Exception as exc:
        raise FedsimError(f"data.path: {p} could not be read ({type(exc).__name__}: {exc})") from None
    if not isinstance(blob, dict) or "x" not in blob or "y" not in blob:
        raise FedsimError(f"data.path: {p} needs arrays 'x' and 'y' (found: {', '.join(blob) if isinstance(blob, dict) else type(blob).__name__})")
    return Dataset.from_arrays(
        blob["x"], blob["y"], client_id=blob.get("client_id"), x_test=blob.get("x_test"), y_test=blob.get("y_test"),
        test_fraction=test_fraction, seed=seed,
    )


def load_dataset(
    name: str,
    *,
    seed: int = 0,
    path: str | None = None,
    synthetic: dict[str, Any] | None = None,
    test_fraction: float = 0.2,
) -> Dataset:
    """Load data set ``name`` (one of :data:`DATASETS`).

    ``path`` is the custom file; ``synthetic`` the keyword arguments of
    :func:`fedsim.data.synthetic.synthetic_federated` (alpha, beta, num_devices, ...).
    """
    if name in ("mnist", "fashion_mnist"):
        from fedsim.data.mnist import load_idx_set

        xtr, ytr, xte, yte = load_idx_set(name)
        return Dataset(name, xtr, ytr, xte, yte, (1, 28, 28), 10, "image")
    if name in ("cifar10", "cifar100"):
        from fedsim.data.cifar import CIFAR, load_cifar

        xtr, ytr, xte, yte = load_cifar(name)
        return Dataset(name, xtr, ytr, xte, yte, (3, 32, 32), CIFAR[name]["classes"], "image")
    if name in ("femnist", "shakespeare"):
        from fedsim.data.leaf import SEQ_LEN, SHAKESPEARE_LETTERS, load_leaf

        s = load_leaf(name, seed=seed)
        if name == "femnist":
            return Dataset(name, s.x_train, s.y_train, s.x_test, s.y_test, (1, 28, 28), 62, "image", s.user_train, s.users)
        v = len(SHAKESPEARE_LETTERS)
        return Dataset(name, s.x_train, s.y_train, s.x_test, s.y_test, (s.x_train.shape[1] or SEQ_LEN,), v, "sequence",
                       s.user_train, s.users, v)
    if name == "synthetic":
        from fedsim.data.synthetic import synthetic_federated

        params = dict(synthetic or {})
        xtr, ytr, dev, xte, yte = synthetic_federated(seed=seed, **params)
        classes = int(params.get("num_classes", 10))
        return Dataset(name, xtr, ytr, xte, yte, (xtr.shape[1],), classes, "vector", dev, [f"device{k}" for k in range(int(dev.max()) + 1)])
    if name == "custom":
        return _load_custom(path, seed, test_fraction)
    raise FedsimError(f"data.dataset: unknown dataset '{name}' (allowed: {', '.join(DATASETS)})")
