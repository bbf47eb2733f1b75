import pickle
import shutil

import numpy as np
import pytest
import torch
from torchvision import datasets

from coursekit import data


def test_mnist_as_one_uint8_tensor():
    train = data.tensors("mnist", "train")
    test = data.tensors("mnist", "test")
    assert train.images.shape == (60_000, 1, 28, 28) and train.images.dtype == torch.uint8
    assert test.images.shape == (10_000, 1, 28, 28)
    assert train.labels.dtype == torch.int64
    assert set(train.labels.unique().tolist()) == set(range(10))
    assert train.labels[:5].tolist() == [5, 0, 4, 1, 9]  # the classic first digits of MNIST


def test_fashion_mnist_classes():
    test = data.tensors("fashion_mnist", "test")
    assert len(test) == 10_000 and test.classes[0] == "T-shirt/top"


def test_subsets_are_deterministic_and_independent_of_the_global_seed():
    torch.manual_seed(1)
    a = data.tensors("mnist", "train", size=500)
    torch.manual_seed(2)
    b = data.tensors("mnist", "train", size=500)
    assert torch.equal(a.labels, b.labels) and torch.equal(a.images, b.images)
    assert len(a) == 500 and len(a.labels.unique()) == 10


def test_normalized_images_have_roughly_zero_mean_unit_std():
    x = data.tensors("mnist", "train", size=5000).normalized()
    assert abs(x.mean().item()) < 0.05 and abs(x.std().item() - 1) < 0.05


def test_tensor_loader_covers_every_example_once_per_epoch():
    subset = data.tensors("mnist", "test", size=1000)
    loader = data.TensorLoader(subset, batch_size=128, shuffle=True, seed=3)
    assert len(loader) == 8
    labels = torch.cat([y for _, y in loader])
    assert sorted(labels.tolist()) == sorted(subset.labels.tolist())
    first = [y for _, y in loader]
    again = [y for _, y in loader]
    loader.set_epoch(1)
    other = [y for _, y in loader]
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    assert not torch.equal(first[0], other[0])


def test_loaders_follow_the_profile():
    from coursekit.book.profiles import get_profile

    train, test = data.loaders(get_profile("smoke"), "mnist")
    assert train.dataset_size == 512 and test.dataset_size == 256
    x, y = next(iter(train))
    assert x.shape == (64, 1, 28, 28) and x.dtype == torch.float32


def test_missing_data_gives_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv(data.DATA_ENV, str(tmp_path / "nowhere"))
    with pytest.raises(data.DatasetNotFoundError) as info:
        data.load("mnist", "train", download=False)
    message = str(info.value)
    assert "train-images-idx3-ubyte.gz is missing" in message  # what
    assert str(tmp_path / "nowhere") in message  # where
    assert "coursekit data download mnist" in message  # fix
    assert "given by $COURSEKIT_DATA" in message


def test_failed_download_is_reported_not_replaced(tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(datasets.MNIST, "download", offline)
    with pytest.raises(data.DatasetNotFoundError, match="network is unreachable"):
        data.load("mnist", "test", root=tmp_path)


def test_corrupt_archive_is_detected(tmp_path):
    source = data.data_root() / "MNIST" / "raw"
    target = tmp_path / "MNIST" / "raw"
    target.mkdir(parents=True)
    for name, _ in datasets.MNIST.resources:
        shutil.copy(source / name, target / name)
    (target / "t10k-labels-idx1-ubyte.gz").write_bytes(b"truncated")
    problems = data.check_files("mnist", tmp_path)
    assert len(problems) == 1 and "t10k-labels-idx1-ubyte.gz is corrupt" in problems[0]
    with pytest.raises(data.DatasetNotFoundError, match="corrupt"):
        data.load("mnist", "test", root=tmp_path, download=False)


def _write_cifar_batch(path, n, seed):
    rng = np.random.default_rng(seed)
    # The real files were pickled by Python 2: str keys, read back with latin1 decoding.
    batch = {
        "batch_label": "written by the test",
        "labels": rng.integers(0, 10, n).tolist(),
        "data": rng.integers(0, 256, (n, 3 * 32 * 32), dtype=np.uint8),
        "filenames": [f"img{i}.png" for i in range(n)],
    }
    path.write_bytes(pickle.dumps(batch))
    return batch


def test_cifar10_loads_from_files_in_cifar_format(tmp_path, monkeypatch):
    """CIFAR-10 is not available offline: write a tiny copy in its exact pickle format."""
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    batches = {}
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for seed, name in enumerate(names):
        batches[name] = _write_cifar_batch(folder / name, 4, seed)
    classes = ["airplane", "automobile", "bird", "cat", "deer",
               "dog", "frog", "horse", "ship", "truck"]
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": classes}))
    md5 = {name: data.datasets._md5(folder / name) for name in names + ["batches.meta"]}
    # Point torchvision's checksum table at our files; the loading code itself is the real one.
    monkeypatch.setattr(datasets.CIFAR10, "train_list", [[n, md5[n]] for n in names[:5]])
    monkeypatch.setattr(datasets.CIFAR10, "test_list", [["test_batch", md5["test_batch"]]])
    monkeypatch.setitem(datasets.CIFAR10.meta, "md5", md5["batches.meta"])

    train = data.tensors("cifar10", "train", root=tmp_path)
    test = data.tensors("cifar10", "test", root=tmp_path)
    assert train.images.shape == (20, 3, 32, 32) and train.images.dtype == torch.uint8
    assert test.images.shape == (4, 3, 32, 32) and test.classes == classes
    raw = batches["data_batch_1"]["data"][0].reshape(3, 32, 32)
    assert torch.equal(train.images[0], torch.from_numpy(raw))  # channels first, same pixels
    assert train.labels[:4].tolist() == batches["data_batch_1"]["labels"]
    # A corrupted batch is caught by the md5 check before anything is read.
    (folder / "data_batch_3").write_bytes(b"junk")
    assert "data_batch_3 is corrupt" in " ".join(data.check_files("cifar10", tmp_path))
