"""Atomic checkpoint files and RNG state capture."""

import os
import random

import numpy as np
import pytest
import torch

from coursekit.train import checkpoint


def test_roundtrip_of_tensors_and_plain_data(tmp_path):
    state = {"model": {"w": torch.arange(6.0).view(2, 3)}, "epoch": 3, "history": {"loss": [0.5]},
             "rng": checkpoint.rng_state()}
    path = checkpoint.save(state, tmp_path / "sub" / "run.pt")
    loaded = checkpoint.load(path)
    assert torch.equal(loaded["model"]["w"], state["model"]["w"])
    assert loaded["epoch"] == 3 and loaded["history"] == {"loss": [0.5]}


def test_a_crash_while_writing_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "run.pt"
    checkpoint.save({"epoch": 1}, path)
    real_save = torch.save

    def dying_save(obj, handle):
        real_save(obj, handle)
        handle.truncate(10)  # half a file on disk, then the "crash"
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", dying_save)
    with pytest.raises(KeyboardInterrupt):
        checkpoint.save({"epoch": 2}, path)
    monkeypatch.undo()
    assert checkpoint.load(path)["epoch"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["run.pt"]  # no temporary left behind


def test_temporaries_of_a_killed_writer_are_cleaned_up_and_a_live_writers_kept(tmp_path):
    stale = tmp_path / ".run.pt.abc123.tmp"
    stale.write_bytes(b"partial")
    an_hour_ago = stale.stat().st_mtime - 3600
    os.utime(stale, (an_hour_ago, an_hour_ago))
    live = tmp_path / ".run.pt.def456.tmp"  # another process writing the same file right now
    live.write_bytes(b"in progress")
    checkpoint.save({"epoch": 1}, tmp_path / "run.pt")
    assert not stale.exists() and live.exists()


def test_missing_and_corrupt_files_are_explained(tmp_path):
    with pytest.raises(FileNotFoundError, match="resume=False"):
        checkpoint.load(tmp_path / "nothing.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(checkpoint.CheckpointError, match="Delete it"):
        checkpoint.load(bad)


def test_rng_state_restores_python_numpy_and_torch(tmp_path):
    torch.manual_seed(1)
    random.seed(1)
    np.random.seed(1)
    np.random.randn()  # leaves a cached Gaussian in NumPy's state
    saved = checkpoint.load(checkpoint.save({"rng": checkpoint.rng_state()},
                                            tmp_path / "r.pt"))["rng"]
    first = (random.random(), np.random.randn(3).tolist(), torch.rand(3).tolist())
    random.random(), np.random.rand(), torch.rand(5)  # move every generator on
    checkpoint.set_rng_state(saved)
    assert (random.random(), np.random.randn(3).tolist(), torch.rand(3).tolist()) == first
