"""Train-time augmentation: the batched crop/flip equals a per-image reference, draws depend only on
(seed, client, round), and the serial and vectorized runtimes train on the same augmented samples."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from fedsim.client.local import LocalSGD
from fedsim.client.task import ClientTask
from fedsim.data.augment import Augmentation
from fedsim.data.federated import FederatedData
from fedsim.models.functional import FunctionalModel
from fedsim.models.zoo import build_model
from fedsim.runtimes import SerialRuntime, VectorizedRuntime


def test_batched_crop_and_flip_equal_the_per_image_reference():
    aug = Augmentation((3, 8, 6), crop_padding=2, flip=True)
    x = torch.randn(50, 3 * 8 * 6)
    offsets, flips = aug.draw(50, torch.Generator().manual_seed(0))
    out = aug.apply(x, offsets, flips)
    for i in range(50):
        img = F.pad(x[i].reshape(3, 8, 6), (2, 2, 2, 2))
        oy, ox = offsets[i].tolist()
        ref = img[:, oy : oy + 8, ox : ox + 6]
        if flips[i]:
            ref = ref.flip(-1)
        assert torch.equal(out[i].reshape(3, 8, 6), ref)
    assert 0.3 < flips.float().mean() < 0.7 and offsets.min() == 0 and offsets.max() == 4
    assert torch.equal(Augmentation((3, 8, 6), 0, False).apply(x, offsets, flips), x)


def federation(augment: Augmentation | None) -> FederatedData:
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(120, 3 * 16 * 16, generator=gen), torch.randint(0, 10, (120,), generator=gen)
    idx = [torch.arange(i * 20, (i + 1) * 20) for i in range(6)]
    idx[2] = idx[2][:7]  # unequal sizes
    return FederatedData(x, y, idx, x[:10], y[:10], input_shape=(3, 16, 16), augment=augment)


def test_a_clients_augmented_samples_depend_on_seed_client_and_round_only():
    data = federation(Augmentation((3, 16, 16), 4, True))
    a = data.for_round([1, 3], seed=7, rnd=2)
    b = data.for_round([0, 3, 5], seed=7, rnd=2)
    c = data.for_round([3], seed=7, rnd=3)
    assert torch.equal(a.client_data(3)[0], b.client_data(3)[0])
    assert torch.equal(a.client_data(3)[1], data.client_data(3)[1])
    assert not torch.equal(a.client_data(3)[0], c.client_data(3)[0])
    assert not torch.equal(a.client_data(3)[0], data.client_data(3)[0])
    assert a.client_sizes()[[1, 3]].tolist() == [20, 20] and federation(None).for_round([1], 7, 2) is not None


def test_serial_and_vectorized_train_on_the_same_augmented_samples():
    task = ClientTask(LocalSGD(lr=0.05, batch_size=8, epochs=2))
    results = []
    for runtime_cls in (SerialRuntime, VectorizedRuntime):
        model = FunctionalModel(build_model("cnn", seed=0, input_shape=(3, 16, 16)))
        runtime = runtime_cls(model, federation(Augmentation((3, 16, 16), 2, True)), seed=3)
        results.append(runtime.run_cohort(task, model.initial_params(), [0, 2, 4], 5))
    assert torch.allclose(results[0].updates, results[1].updates, atol=1e-5)
    plain = SerialRuntime(FunctionalModel(build_model("cnn", seed=0, input_shape=(3, 16, 16))), federation(None), seed=3)
    assert not torch.allclose(plain.run_cohort(task, plain.model.initial_params(), [0, 2, 4], 5).updates, results[0].updates, atol=1e-4)


def test_augment_on_a_non_image_data_set_is_a_one_line_error():
    import pytest

    from fedsim.config.data import DataConfig
    from fedsim.errors import FedsimError

    cfg = DataConfig(dataset="synthetic", synthetic={"num_devices": 5}, partition={"kind": "natural"}, augment={"crop_padding": 2})
    with pytest.raises(FedsimError, match="data.augment: crops and flips need an image data set, not data.dataset=synthetic"):
        cfg.build(seed=0)
