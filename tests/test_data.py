import os
import pickle
import shutil
import socket
import subprocess
import sys
import threading

import numpy as np
import pytest
import torch
from torchvision import datasets

from coursekit import cli, data
from coursekit.data import fetch, integrity
from coursekit.util import atomic


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

    monkeypatch.setattr(fetch, "reachable", lambda targets, timeout: True)
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
    md5 = {name: integrity.hash_file(folder / name, "md5") for name in names + ["batches.meta"]}
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


# --- Honest errors: extracted files verified, exit codes, offline, no leftovers -------------

MNIST_RAW = data.data_root() / "MNIST" / "raw"


def _copy_mnist(root, *, archives=True, extracted=True):
    """A private copy of MNIST/raw under ``root`` (tests may damage it)."""
    target = root / "MNIST" / "raw"
    target.mkdir(parents=True)
    for archive, _ in datasets.MNIST.resources:
        names = ([archive] if archives else []) + ([archive[:-3]] if extracted else [])
        for name in names:
            shutil.copy(MNIST_RAW / name, target / name)
    return target


def _alter_one_byte(path, offset=20_000):
    with path.open("r+b") as handle:
        handle.seek(offset)
        old = handle.read(1)
        handle.seek(offset)
        handle.write(bytes([old[0] ^ 0xFF]))


def _no_download(monkeypatch):
    """Make any download attempt fail the test loudly."""
    def refuse(*args, **kwargs):
        raise AssertionError("a download was attempted")

    monkeypatch.setattr(datasets.MNIST, "download", refuse)
    monkeypatch.setattr(fetch, "reachable", refuse)


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_reference_table_is_what_the_verified_archives_decompress_to(name):
    info = data.datasets.DATASETS[name]
    for archive, md5 in info.cls.resources:
        path = data.data_root() / info.folder / archive
        assert integrity.hash_file(path, "md5") == md5
        assert integrity.reference(path) == integrity.EXTRACTED[md5], archive


@pytest.mark.parametrize("with_archive", [True, False])
def test_truncated_extracted_file_is_named_and_left_alone(tmp_path, monkeypatch, with_archive):
    folder = _copy_mnist(tmp_path, archives=with_archive)
    victim = folder / "t10k-images-idx3-ubyte"
    os.truncate(victim, 7_000_000)
    (problem,) = data.problems("mnist", tmp_path)
    assert (problem.path, problem.kind) == (victim, "corrupt")
    assert "truncated: 7,000,000 bytes, expected 7,840,016" in str(problem)
    _no_download(monkeypatch)
    with pytest.raises(data.DatasetCorruptError) as info:
        data.load("mnist", "test", root=tmp_path)
    message = str(info.value)
    assert f"{victim} is corrupt (truncated" in message  # the file, by its full path
    assert f"delete {victim}" in message  # what to do
    assert "nothing was downloaded" in message and "downloaded from" not in message
    if with_archive:
        assert "extracted again from the verified t10k-images-idx3-ubyte.gz" in message
    else:
        assert "coursekit data download mnist" in message
    assert victim.stat().st_size == 7_000_000  # never replaced behind the reader's back


def test_byte_altered_extracted_file_is_caught_even_with_a_warm_cache(tmp_path, monkeypatch):
    folder = _copy_mnist(tmp_path)
    hashed = []
    real_hash = integrity.hash_file
    monkeypatch.setattr(integrity, "hash_file", lambda p, a: hashed.append(p.name) or
                        real_hash(p, a))
    monkeypatch.setattr(integrity, "RACY_NS", 0)  # the copies are fresh; let them be cached
    assert data.problems("mnist", tmp_path) == []
    assert len(hashed) == 8 and (folder / integrity.CACHE_NAME).is_file()
    hashed.clear()
    assert data.problems("mnist", tmp_path) == []
    assert hashed == []  # unchanged files are not read again
    victim = folder / "train-images-idx3-ubyte"
    _alter_one_byte(victim)
    (problem,) = data.problems("mnist", tmp_path)
    assert problem.path == victim and "altered: right size" in problem.detail
    assert hashed == ["train-images-idx3-ubyte"]  # only the edited file is hashed again
    with pytest.raises(data.DatasetCorruptError, match="train-images-idx3-ubyte is corrupt"):
        data.tensors("mnist", "train", root=tmp_path)


@pytest.mark.parametrize("junk", ["{not json", '{"format": 1}', "[1]",
                                  '{"format": 1, "files": {"t10k-labels-idx1-ubyte": 5}}'])
def test_a_damaged_digest_cache_is_ignored(tmp_path, junk):
    folder = _copy_mnist(tmp_path, archives=False)
    (folder / integrity.CACHE_NAME).write_text(junk)
    assert data.problems("mnist", tmp_path) == []
    os.truncate(folder / "t10k-labels-idx1-ubyte", 10)
    assert len(data.problems("mnist", tmp_path)) == 1


def test_a_read_only_data_folder_is_verified_but_never_written(tmp_path, monkeypatch):
    folder = _copy_mnist(tmp_path, extracted=False)
    monkeypatch.setattr(integrity, "RACY_NS", 0)
    folder.chmod(0o555)  # even root, who could write, must not
    try:
        assert data.problems("mnist", tmp_path) == []
        with pytest.raises(data.DatasetNotFoundError, match="read-only; copy"):
            data.load("mnist", "test", root=tmp_path)  # its archives need extracting
        assert sorted(p.name for p in folder.iterdir()) == sorted(
            name for name, _ in datasets.MNIST.resources)
    finally:
        folder.chmod(0o755)


def test_deleting_the_named_file_repairs_it_from_the_verified_archive(tmp_path, monkeypatch):
    folder = _copy_mnist(tmp_path)
    victim = folder / "t10k-labels-idx1-ubyte"
    _alter_one_byte(victim, offset=100)
    with pytest.raises(data.DatasetCorruptError, match=f"delete {victim}"):
        data.load("mnist", "test", root=tmp_path)
    victim.unlink()  # what the message says to do
    _no_download(monkeypatch)
    test = data.load("mnist", "test", root=tmp_path)  # extracted again, nothing fetched
    assert victim.read_bytes() == (MNIST_RAW / victim.name).read_bytes()
    assert test.targets[:5].tolist() == [7, 2, 1, 0, 4]


def test_extraction_leaves_other_extractions_alone_and_clears_abandoned_ones(tmp_path):
    folder = _copy_mnist(tmp_path, extracted=False)
    archive = folder / "t10k-labels-idx1-ubyte.gz"
    running = folder / f".t10k-labels-idx1-ubyte.other{atomic.TMP_SUFFIX}"
    abandoned = folder / f".t10k-labels-idx1-ubyte.killed{atomic.TMP_SUFFIX}"
    running.write_bytes(b"another process is writing this")
    abandoned.write_bytes(b"left by a killed process")
    an_hour_ago = abandoned.stat().st_mtime - 3600
    os.utime(abandoned, (an_hour_ago, an_hour_ago))
    target = integrity.extract(archive, datasets.MNIST.resources[3][1])
    assert target.read_bytes() == (MNIST_RAW / target.name).read_bytes()
    assert [p.name for p in folder.glob(".*")] == [running.name]  # ours renamed, old gone


def test_corrupt_archive_next_to_intact_extracted_file_says_nothing_needs_downloading(
        tmp_path):
    folder = _copy_mnist(tmp_path)
    (folder / "train-labels-idx1-ubyte.gz").write_bytes(b"not gzip")
    (problem,) = data.problems("mnist", tmp_path)
    assert problem.path.name == "train-labels-idx1-ubyte.gz" and problem.kind == "corrupt"
    assert "nothing needs downloading" in problem.fix


def test_offline_gives_up_after_the_probe_without_downloading(tmp_path, monkeypatch):
    """A resolver that never answers (the long DNS wait) must not hold the error back."""
    release, asked, called = threading.Event(), [], threading.Event()

    def hanging_resolver(host, *args, **kwargs):
        asked.append(host)
        called.set()
        release.wait(30)
        raise socket.gaierror("no network")

    def refuse(*args, **kwargs):
        raise AssertionError("a download was attempted")

    monkeypatch.setattr(datasets.MNIST, "download", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", hanging_resolver)
    monkeypatch.setattr(fetch, "PROBE_TIMEOUT_S", 0.05)
    root = tmp_path / "fresh" / "data"
    try:
        with pytest.raises(data.DatasetNotFoundError) as info:
            data.load("mnist", "train", root=root)
    finally:
        release.set()
    message = str(info.value)
    assert "offline" in message and "no download was attempted" in message
    assert "within 0.05 s" in message and "COURSEKIT_PROBE_TIMEOUT" in message
    assert called.wait(30) and asked[0] in ("ossci-datasets.s3.amazonaws.com",
                                            "yann.lecun.com")  # it did try the mirrors
    assert not (tmp_path / "fresh").exists()  # and created nothing


def test_probe_timeout_is_under_a_second_and_configurable(monkeypatch):
    monkeypatch.delenv(fetch.PROBE_TIMEOUT_ENV, raising=False)
    assert 0 < fetch.probe_timeout() < 1
    monkeypatch.setenv(fetch.PROBE_TIMEOUT_ENV, "3")
    assert fetch.probe_timeout() == 3.0
    monkeypatch.setenv(fetch.PROBE_TIMEOUT_ENV, "soon")
    with pytest.raises(ValueError, match="number of seconds"):
        fetch.probe_timeout()


def test_the_probe_goes_to_the_proxy_when_one_is_configured(monkeypatch):
    for name in ("https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY", "no_proxy",
                 "NO_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    urls = ["https://ossci-datasets.s3.amazonaws.com/mnist/a.gz", "http://yann.lecun.com/b"]
    assert fetch.endpoints(urls) == [("ossci-datasets.s3.amazonaws.com", 443),
                                     ("yann.lecun.com", 80)]
    monkeypatch.setenv("https_proxy", "http://proxy.example:3128")
    assert fetch.endpoints(urls[:1]) == [("proxy.example", 3128)]


def test_a_failed_download_leaves_no_empty_folders_or_partial_files(tmp_path, monkeypatch):
    arrived = []

    def half_download(self):
        os.makedirs(self.raw_folder, exist_ok=True)
        for name in arrived:  # archives that came in whole before the failure
            shutil.copy(MNIST_RAW / name, os.path.join(self.raw_folder, name))
        with open(os.path.join(self.raw_folder, "train-images-idx3-ubyte.gz"), "wb") as f:
            f.write(b"\x1f\x8b partial")
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz: connection reset")

    monkeypatch.setattr(fetch, "reachable", lambda targets, timeout: True)
    monkeypatch.setattr(datasets.MNIST, "download", half_download)
    root = tmp_path / "new" / "data"
    with pytest.raises(data.DatasetNotFoundError) as info:
        data.load("mnist", "train", root=root)
    assert "connection reset" in str(info.value) and "partial files were removed" in str(
        info.value)
    assert list(tmp_path.iterdir()) == []  # no MNIST/raw, no data/, no new/
    # Whole archives that did arrive are kept (the retry needs only the rest).
    arrived.append("t10k-labels-idx1-ubyte.gz")
    kept = tmp_path / "mine.txt"
    kept.write_text("keep me")
    with pytest.raises(data.DatasetNotFoundError):
        data.load("mnist", "train", root=tmp_path)
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")) == [
        "MNIST", "MNIST/raw", "MNIST/raw/t10k-labels-idx1-ubyte.gz", "mine.txt"]


def _check(monkeypatch, root, *names):
    """``coursekit data check`` in process: 0, or the message ``sys.exit`` exits 1 with."""
    monkeypatch.setenv(data.DATA_ENV, str(root))
    try:
        cli.main(["data", "check", *names])
    except SystemExit as stop:
        assert stop.code not in (None, 0)
        return stop.code
    return 0


def test_data_check_exit_status_for_missing_corrupt_and_altered_files(tmp_path, monkeypatch,
                                                                       capsys):
    message = _check(monkeypatch, tmp_path / "absent", "mnist")
    assert f"the data folder {tmp_path / 'absent'} (given by $COURSEKIT_DATA) does not " \
           "exist" in message  # the root itself is missing, and said so
    folder = _copy_mnist(tmp_path)
    assert _check(monkeypatch, tmp_path, "mnist") == 0
    assert capsys.readouterr().out == "mnist: ok\n"
    assert _check(monkeypatch, tmp_path, "mnist", "fashion_mnist") != 0  # one is missing
    assert capsys.readouterr().out == (
        f"mnist: ok\nfashion_mnist: missing (none of its 4 files is under "
        f"{tmp_path / 'FashionMNIST' / 'raw'})\n"
        "    fix: run `coursekit data download fashion_mnist`\n")
    (tmp_path / "FashionMNIST" / "raw").mkdir(parents=True)
    shutil.copy(MNIST_RAW.parents[1] / "FashionMNIST" / "raw" / "t10k-labels-idx1-ubyte",
                tmp_path / "FashionMNIST" / "raw")
    assert _check(monkeypatch, tmp_path, "fashion_mnist") != 0  # three of four missing
    out = capsys.readouterr().out
    assert "FashionMNIST/raw/t10k-images-idx3-ubyte.gz is missing" in out
    assert "t10k-labels-idx1-ubyte.gz is missing" not in out
    victim = folder / "t10k-labels-idx1-ubyte"
    _alter_one_byte(victim, offset=50)
    assert _check(monkeypatch, tmp_path, "mnist") != 0
    out = capsys.readouterr().out
    assert f"{victim} is corrupt (altered" in out and f"fix: delete {victim}" in out
    shutil.copy(MNIST_RAW / victim.name, victim)
    (folder / "train-labels-idx1-ubyte.gz").write_bytes(b"junk")
    assert _check(monkeypatch, tmp_path, "mnist") != 0
    assert "train-labels-idx1-ubyte.gz is corrupt" in capsys.readouterr().out


def test_data_check_exits_with_status_1_as_a_process(tmp_path):
    folder = _copy_mnist(tmp_path, archives=False)
    os.truncate(folder / "train-labels-idx1-ubyte", 100)
    env = {**os.environ, data.DATA_ENV: str(tmp_path)}
    done = subprocess.run([sys.executable, "-m", "coursekit.cli", "data", "check", "mnist"],
                          env=env, capture_output=True, text=True)
    assert done.returncode == 1, done.stderr
    assert "train-labels-idx1-ubyte is corrupt (truncated" in done.stdout
