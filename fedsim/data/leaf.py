"""LEAF's federated data sets (Caldas et al. 2018, arXiv:1812.01097): FEMNIST and Shakespeare.

LEAF ships no data files, only scripts (``preprocess.sh`` in https://github.com/TalwalkarLab/leaf)
that download the raw sources (NIST SD19; the Complete Works of Shakespeare from Project
Gutenberg) and write JSON files ``{"users": [...], "num_samples": [...], "user_data": {user:
{"x": [...], "y": [...]}}}``. Put its ``data/train/*.json`` and ``data/test/*.json`` (a
``-t sample`` split: every user in both) in ``$FEDSIM_DATA/<name>/train`` and ``/test``, or its
``data/all_data/*.json`` in ``$FEDSIM_DATA/<name>/all_data`` (then each user's samples are split
90/10, LEAF's default ``--tf 0.9``, from the seed). No checksums are published for generated
files; the array cache is keyed by the SHA-256 of the JSON files read.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fedsim.data.files import cached_arrays, data_dir
from fedsim.errors import FedsimError
from fedsim.seeding import numpy_generator

__all__ = ["LEAF_URL", "SHAKESPEARE_LETTERS", "LeafSplit", "load_leaf", "read_leaf_json"]

LEAF_URL = "https://github.com/TalwalkarLab/leaf"
# LEAF's vocabulary (models/utils/language_utils.py: ALL_LETTERS); a character's class is its index.
SHAKESPEARE_LETTERS = "\n !\"&'(),-.0123456789:;>?ABCDEFGHIJKLMNOPQRSTUVWXYZ[]abcdefghijklmnopqrstuvwxyz}"
SEQ_LEN = 80


@dataclass
class LeafSplit:
    """Decoded LEAF data: training arrays with each sample's user index, test arrays, user names."""

    x_train: np.ndarray
    y_train: np.ndarray
    user_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    users: list[str]


def read_leaf_json(paths: list[Path]) -> dict[str, dict[str, list]]:
    """Merge LEAF JSON files into ``{user: {"x": [...], "y": [...]}}`` (file order, then user order)."""
    merged: dict[str, dict[str, list]] = {}
    for path in paths:
        try:
            blob = json.loads(path.read_text())
            users, user_data = blob["users"], blob["user_data"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise FedsimError(f"{path}: not a LEAF JSON file (needs 'users' and 'user_data'): {exc}") from None
        for u in users:
            d = user_data[u]
            slot = merged.setdefault(u, {"x": [], "y": []})
            slot["x"].extend(d["x"])
            slot["y"].extend(d["y"])
    return merged


def _encode(name: str, x: list, y: list) -> tuple[np.ndarray, np.ndarray]:
    if name == "femnist":
        return np.asarray(x, dtype=np.float32).reshape(len(x), -1), np.asarray(y, dtype=np.int64)
    # Shakespeare: x are 80-character strings, y the next character; unknown characters map to ' '.
    lookup = np.full(0x110000, SHAKESPEARE_LETTERS.index(" "), dtype=np.int64)
    lookup[[ord(c) for c in SHAKESPEARE_LETTERS]] = np.arange(len(SHAKESPEARE_LETTERS))
    xs = np.array([lookup[np.frombuffer(s.encode("utf-32-le"), dtype=np.uint32)] for s in x], dtype=np.int64).reshape(len(x), -1)
    ys = lookup[np.array([ord(c[0]) for c in y], dtype=np.int64)] if y else np.zeros(0, np.int64)
    return xs, ys


def _files(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.json")) if folder.is_dir() else []


def load_leaf(name: str, *, seed: int, folder: Path | None = None, train_fraction: float = 0.9) -> LeafSplit:
    """Read ``femnist`` or ``shakespeare`` from LEAF's JSON output (see the module docstring)."""
    folder = folder or data_dir(name)
    train, test, everything = _files(folder / "train"), _files(folder / "test"), _files(folder / "all_data")
    if not (train and test) and not everything:
        raise FedsimError(
            f"{name}: no LEAF JSON files in {folder}/train and /test (or {folder}/all_data); generate them with LEAF's "
            f"data/{name}/preprocess.sh ({LEAF_URL}) and copy data/train, data/test there (FEDSIM_DATA/{name}/)"
        )
    sources = train + test if train and test else everything

    def build() -> dict[str, np.ndarray]:
        if train and test:
            tr, te = read_leaf_json(train), read_leaf_json(test)
        else:
            tr, te = {}, {}
            rng = numpy_generator(seed, "leaf_split")
            for u, d in read_leaf_json(everything).items():
                n = len(d["y"])
                perm = rng.permutation(n)
                k = max(1, int(train_fraction * n)) if n > 1 else n
                tr[u] = {"x": [d["x"][i] for i in perm[:k]], "y": [d["y"][i] for i in perm[:k]]}
                te[u] = {"x": [d["x"][i] for i in perm[k:]], "y": [d["y"][i] for i in perm[k:]]}
        users = [u for u in tr if tr[u]["y"]]
        xtr, ytr = _encode(name, [s for u in users for s in tr[u]["x"]], [s for u in users for s in tr[u]["y"]])
        owner = np.concatenate([np.full(len(tr[u]["y"]), i, dtype=np.int64) for i, u in enumerate(users)])
        xte, yte = _encode(name, [s for d in te.values() for s in d["x"]], [s for d in te.values() for s in d["y"]])
        if name == "femnist":  # standardise with the training pixels' own mean and std
            mean, std = float(xtr.mean()), float(xtr.std()) or 1.0
            xtr, xte = (xtr - mean) / std, (xte - mean) / std
        names = np.array(users)
        return {"x_train": xtr, "y_train": ytr, "user_train": owner, "x_test": xte, "y_test": yte, "users": names}

    key = "split" if train and test else f"all:{seed}:{train_fraction}"
    a = cached_arrays(name, sources, ("x_train", "y_train", "user_train", "x_test", "y_test", "users"), build, extra_key=key)
    if len(a["y_train"]) == 0:
        raise FedsimError(f"{name}: the LEAF files in {folder} hold no training samples")
    return LeafSplit(a["x_train"], a["y_train"], a["user_train"], a["x_test"], a["y_test"], [str(u) for u in a["users"]])
