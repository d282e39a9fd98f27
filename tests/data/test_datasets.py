"""The loaders: the shipped real files' checksums, the cache, and the LEAF, CIFAR and custom readers on
small files written here in the official formats (no network)."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import pickle
import tarfile
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from fedsim.data import build_federated_data, load_dataset
from fedsim.data.cifar import load_cifar, read_cifar_archive
from fedsim.data.datasets import Dataset
from fedsim.data.files import cached_arrays
from fedsim.data.leaf import SHAKESPEARE_LETTERS
from fedsim.data.mnist import FASHION_MNIST_FILES, MNIST_FILES, load_idx_set
from fedsim.errors import FedsimError

DATA = Path(os.environ.get("FEDSIM_DATA", ""))


@pytest.mark.parametrize("name,expected", [("mnist", MNIST_FILES), ("fashion_mnist", FASHION_MNIST_FILES)])
def test_shipped_files_match_their_checksum_lists(name, expected):
    folder = DATA / name
    listed = {}
    for line in (folder / "SHA256SUMS.uncompressed").read_text().splitlines():
        digest, fname = line.split()[:2]
        listed[fname] = digest
    gz_listed = dict(reversed(line.split()) for line in (folder / "SHA256SUMS").read_text().splitlines())
    for fname, digest in expected.items():
        raw = (folder / (fname + ".gz")).read_bytes()
        assert hashlib.sha256(raw).hexdigest() == gz_listed[fname + ".gz"]
        assert hashlib.sha256(gzip.decompress(raw)).hexdigest() == digest == listed[fname]


def test_fashion_mnist_matches_its_description():
    xtr, ytr, xte, yte = load_idx_set("fashion_mnist")
    assert xtr.shape == (60000, 784) and xte.shape == (10000, 784)
    assert np.bincount(ytr).tolist() == [6000] * 10 and np.bincount(yte).tolist() == [1000] * 10
    assert abs(xtr.mean()) < 1e-3 and abs(xtr.std() - 1) < 1e-2


def test_cache_is_keyed_by_the_source_and_rebuilt_when_it_changes(tmp_path):
    src = tmp_path / "source.bin"
    src.write_bytes(b"one")
    calls = []

    def build():
        calls.append(1)
        return {"a": np.frombuffer(src.read_bytes(), np.uint8).copy()}

    assert bytes(cached_arrays("t", [src], ["a"], build)["a"]) == b"one"
    assert bytes(cached_arrays("t", [src], ["a"], build)["a"]) == b"one" and len(calls) == 1
    src.write_bytes(b"two")
    assert bytes(cached_arrays("t", [src], ["a"], build)["a"]) == b"two" and len(calls) == 2
    for f in tmp_path.glob(".t.*.npy"):
        f.write_bytes(b"torn")  # a damaged cache file is rebuilt, not trusted
    assert bytes(cached_arrays("t", [src], ["a"], build)["a"]) == b"two" and len(calls) == 3


def _no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError("network disabled in tests")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)


def test_absent_files_offline_name_file_url_and_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("FEDSIM_DATA", str(tmp_path))
    _no_network(monkeypatch)
    with pytest.raises(FedsimError) as err:
        load_cifar("cifar10")
    msg = str(err.value)
    assert "\n" not in msg and "cifar-10-python.tar.gz" in msg and "https://www.cs.toronto.edu/~kriz/" in msg
    assert str(tmp_path / "cifar10") in msg
    with pytest.raises(FedsimError, match="preprocess.sh"):
        load_dataset("femnist")


def test_corrupt_idx_file_is_a_one_line_error(tmp_path):
    folder = tmp_path / "mnist"
    folder.mkdir()
    for name in MNIST_FILES:
        (folder / (name + ".gz")).write_bytes(gzip.compress(b"\x00\x00\x08\x01\x00\x00\x00\x01\x05"))
    with pytest.raises(FedsimError) as err:
        load_idx_set("mnist", folder)
    assert "\n" not in str(err.value) and "does not match" in str(err.value)


# --------------------------------------------------------------------------- CIFAR, official pickle format


def _cifar_archive(path: Path, name: str, rng: np.random.Generator, per_batch: int = 6):
    top, train, test, key = (
        ("cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)], ["test_batch"], b"labels")
        if name == "cifar10"
        else ("cifar-100-python", ["train"], ["test"], b"fine_labels")
    )
    content = {}
    with tarfile.open(path, "w:gz") as tar:
        for member in train + test:
            data = rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8)
            labels = rng.integers(0, 10 if name == "cifar10" else 100, per_batch).tolist()
            blob = pickle.dumps({b"batch_label": member.encode(), key: labels, b"data": data, b"filenames": [b"x.png"] * per_batch})
            info = tarfile.TarInfo(f"{top}/{member}")
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
            content[member] = (data, labels)
    return content, train, test


@pytest.mark.parametrize("name", ["cifar10", "cifar100"])
def test_cifar_reader_on_an_archive_in_the_official_format(tmp_path, monkeypatch, name):
    folder = tmp_path / name
    folder.mkdir()
    archive = folder / ("cifar-10-python.tar.gz" if name == "cifar10" else "cifar-100-python.tar.gz")
    content, train, test = _cifar_archive(archive, name, np.random.default_rng(0))
    xtr, ytr, xte, yte = read_cifar_archive(archive, name)
    assert np.array_equal(xtr, np.concatenate([content[m][0] for m in train]))
    assert ytr.tolist() == sum((content[m][1] for m in train), []) and yte.tolist() == content[test[0]][1]
    # Through the loader: standardised per channel with the published constants, images (3, 32, 32).
    monkeypatch.setenv("FEDSIM_DATA", str(tmp_path))
    monkeypatch.setenv("FEDSIM_CACHE", str(tmp_path / "cache"))
    from fedsim.data import cifar

    x, _, _, _ = cifar._load.__wrapped__(name, folder, False)
    mean, std = cifar.CIFAR[name]["mean"], cifar.CIFAR[name]["std"]
    img = xtr[0].reshape(3, 32, 32)  # channel planes R, G, B, each row-major
    assert np.allclose(x[0].reshape(3, 32, 32)[1, 5, 7], (img[1, 5, 7] / 255 - mean[1]) / std[1], atol=1e-6)
    # The real loader checks the published MD5: this home-made archive must be refused, in one line.
    with pytest.raises(FedsimError) as err:
        cifar._load.__wrapped__(name, folder, True)
    assert "MD5" in str(err.value) and "\n" not in str(err.value)


def test_corrupt_cifar_archive_is_a_one_line_error(tmp_path):
    bad = tmp_path / "cifar-10-python.tar.gz"
    bad.write_bytes(gzip.compress(b"not a tar file"))
    with pytest.raises(FedsimError) as err:
        read_cifar_archive(bad, "cifar10")
    assert "corrupt" in str(err.value) and "\n" not in str(err.value)


# --------------------------------------------------------------------------- LEAF, official JSON format


def _leaf_json(path: Path, users: dict[str, dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"users": list(users), "num_samples": [len(d["y"]) for d in users.values()], "user_data": users}))


def test_femnist_reader_keeps_writers_as_natural_clients(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    writers = {f"f{i:04d}_{i % 50:02d}": int(rng.integers(3, 9)) for i in range(7)}
    train = {u: {"x": rng.random((n, 784)).round(3).tolist(), "y": rng.integers(0, 62, n).tolist()} for u, n in writers.items()}
    test = {u: {"x": rng.random((2, 784)).round(3).tolist(), "y": rng.integers(0, 62, 2).tolist()} for u in writers}
    names = list(writers)
    _leaf_json(tmp_path / "femnist" / "train" / "all_data_0_niid_0_keep_0_train_9.json", {u: train[u] for u in names[:4]})
    _leaf_json(tmp_path / "femnist" / "train" / "all_data_1_niid_0_keep_0_train_9.json", {u: train[u] for u in names[4:]})
    _leaf_json(tmp_path / "femnist" / "test" / "all_data_0_niid_0_keep_0_test_9.json", test)
    monkeypatch.setenv("FEDSIM_DATA", str(tmp_path))
    ds = load_dataset("femnist")
    assert ds.input_shape == (1, 28, 28) and ds.num_classes == 62 and ds.kind == "image"
    assert len(ds.y_test) == 14 and len(ds.y_train) == sum(writers.values())
    fed = build_federated_data(dataset=ds, num_clients=1, partition="natural", seed=0)
    assert fed.num_clients == 7 and sorted(fed.client_names) == sorted(names)
    raw = np.concatenate([np.asarray(train[u]["x"]) for u in names])
    mean, std = raw.mean(), raw.std()
    for c, writer in enumerate(fed.client_names):  # each client holds exactly its writer's samples, in order
        x, y = fed.client_data(c)
        assert y.tolist() == train[writer]["y"]
        assert np.allclose(x.numpy(), (np.asarray(train[writer]["x"]) - mean) / std, atol=1e-5)
    sub = build_federated_data(dataset=ds, num_clients=1, partition="natural", partition_params={"max_clients": 3}, seed=0)
    assert sub.num_clients == 3 and set(sub.client_names) <= set(names)


def test_shakespeare_reader_encodes_with_leafs_vocabulary(tmp_path, monkeypatch):
    lines = {
        "THE_TRAGEDY_OF_KING_LEAR_EDGAR": "Tom's a-cold. O, do de, do de, do de. Bless thee from whirlwinds, star-blasting, and taking!",
        "AS_YOU_LIKE_IT_ROSALIND": "I pray you, do not fall in love with me, For I am falser than vows made in wine.   ",
    }
    data = {}
    for role, text in lines.items():
        xs = [text[i : i + 80] for i in range(len(text) - 80)]
        data[role] = {"x": xs, "y": [text[i + 80] for i in range(len(text) - 80)]}
    _leaf_json(tmp_path / "shakespeare" / "all_data" / "all_data.json", data)
    monkeypatch.setenv("FEDSIM_DATA", str(tmp_path))
    monkeypatch.setenv("FEDSIM_CACHE", str(tmp_path / "cache"))
    ds = load_dataset("shakespeare", seed=3)
    assert ds.kind == "sequence" and ds.input_shape == (80,) and ds.num_classes == ds.vocab_size == 80
    fed = build_federated_data(dataset=ds, num_clients=1, partition="natural", seed=0)
    assert sorted(fed.client_names) == sorted(lines)
    total = sum(len(d["y"]) for d in data.values())
    assert len(ds.y_train) + len(ds.y_test) == total
    for c, role in enumerate(fed.client_names):
        x, y = fed.client_data(c)
        # LEAF's own encoding: ALL_LETTERS.find(char); every training window is one of the role's.
        expected = {tuple(SHAKESPEARE_LETTERS.find(ch) for ch in s): SHAKESPEARE_LETTERS.find(n) for s, n in zip(data[role]["x"], data[role]["y"])}
        for row, label in zip(x.tolist(), y.tolist()):
            assert expected[tuple(row)] == label
        assert len(y) == max(1, int(0.9 * len(data[role]["y"])))


# --------------------------------------------------------------------------- custom arrays


def test_custom_npz_and_pt_with_client_ids(tmp_path):
    import torch

    rng = np.random.default_rng(0)
    x, y, cid = rng.normal(size=(200, 3, 8, 8)).astype(np.float32), rng.integers(0, 4, 200), rng.choice(["a", "b", "c"], 200)
    np.savez(tmp_path / "d.npz", x=x, y=y, client_id=cid)
    torch.save({"x": torch.from_numpy(x), "y": torch.from_numpy(y), "x_test": torch.from_numpy(x[:5]), "y_test": torch.from_numpy(y[:5])},
               tmp_path / "d.pt")
    a = load_dataset("custom", path=str(tmp_path / "d.npz"), test_fraction=0.25)
    assert a.kind == "image" and a.input_shape == (3, 8, 8) and a.num_classes == 4
    assert len(a.y_train) == 150 and len(a.y_test) == 50 and a.client_names == ["a", "b", "c"]
    fed = build_federated_data(dataset=a, num_clients=1, partition="natural", seed=0)
    assert fed.client_names == ["a", "b", "c"] and sum(len(i) for i in fed.client_indices) == 150
    b = load_dataset("custom", path=str(tmp_path / "d.pt"))
    assert len(b.y_train) == 200 and len(b.y_test) == 5 and b.client_id is None
    with pytest.raises(FedsimError, match="natural needs"):
        build_federated_data(dataset=b, num_clients=1, partition="natural", seed=0)
    np.savez(tmp_path / "bad.npz", features=x)
    with pytest.raises(FedsimError, match="needs arrays 'x' and 'y'"):
        load_dataset("custom", path=str(tmp_path / "bad.npz"))
    tokens = Dataset.from_arrays(rng.integers(0, 30, (50, 12)), rng.integers(0, 30, 50))
    assert tokens.kind == "sequence" and tokens.vocab_size <= 30 and tokens.x_train.dtype == np.int64


@pytest.mark.parametrize("name", ["fashion_quickstart", "fashion_cnn", "synthetic_fedprox", "cifar10_resnet", "femnist_cnn", "shakespeare_lstm"])
def test_shipped_data_configs_validate(name):
    from fedsim.experiment import resolve_config

    cfg = resolve_config(Path(__file__).resolve().parents[2] / "configs" / f"{name}.yaml")
    assert name.startswith(cfg.data.dataset.replace("_mnist", ""))
