"""Kill -9 a training process mid-epoch, resume it, and get bit-identical final weights.

The worker trains a small CNN (BatchNorm, dropout, batched crop/flip augmentation, AdamW,
one-cycle schedule, gradient clipping) on synthetic tensors: the test is about the trainer's
checkpoint/resume logic, not a dataset. One thread everywhere, so CPU kernels are
reproducible from process to process.
"""

import os
import signal
import subprocess
import sys
import textwrap
import time

import torch

WORKER = textwrap.dedent('''
    import sys, time
    import torch
    from torch import nn
    from coursekit.data import augment
    from coursekit.data import TensorData, TensorLoader
    from coursekit.util.repro import seed_everything, set_deterministic
    from coursekit.train import Callback, EarlyStopping, fit

    checkpoint, out, mode = sys.argv[1], sys.argv[2], sys.argv[3]  # argv[4]: step to stop at
    torch.set_num_threads(1)
    seed_everything(0)
    set_deterministic(True)
    g = torch.Generator().manual_seed(1)
    images = torch.randint(0, 256, (400, 1, 12, 12), dtype=torch.uint8, generator=g)
    labels = (images[:, 0, :, :6].float().mean((1, 2)) > 127.5).long()
    data = TensorData("synthetic", images, labels, ["dark", "bright"])
    crop_flip = augment.Compose([augment.RandomCrop(12, padding=2), augment.RandomHorizontalFlip()])
    train = TensorLoader(data, 20, shuffle=True, seed=0, normalize=False, augment=crop_flip)
    val = TensorLoader(data, 200, normalize=False)
    model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                          nn.Flatten(), nn.Dropout(0.3), nn.Linear(8 * 144, 2))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-2)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=1e-2, total_steps=3 * len(train))

    class Slow(Callback):  # says where we are, then waits mid-epoch for the test's SIGKILL
        def on_batch_end(self, step, loss):
            print(step, flush=True)
            time.sleep(0.02)
            if step == int(sys.argv[4]):
                time.sleep(120)

    callbacks = [EarlyStopping(patience=5)] + ([Slow()] if mode == "slow" else [])
    history = fit(model, train, val, epochs=3, optimizer=opt, scheduler=sched, progress=False,
                  clip_grad_norm=1.0, checkpoint=checkpoint, checkpoint_every=7,
                  resume=(mode == "resume"), callbacks=callbacks)
    torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(),
                "history": history.as_dict()}, out)
''')
STEPS_PER_EPOCH = 20
KILL_AT_STEP = 31  # epoch 2, batch 11: steps 29-31 are done but not yet in a checkpoint


def run_worker(script, tmp_path, name, mode):
    return subprocess.Popen(
        [sys.executable, str(script), str(tmp_path / f"{name}.ckpt"), str(tmp_path / f"{name}.out"),
         mode, str(KILL_AT_STEP)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"},
    )


def finish(process):
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr
    return stdout


def test_sigkill_mid_epoch_then_resume_gives_bit_identical_weights(tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(WORKER)

    victim = run_worker(script, tmp_path, "killed", "slow")
    deadline = time.monotonic() + 120
    step = 0
    while step < KILL_AT_STEP:
        line = victim.stdout.readline()
        assert line, f"worker ended before step {KILL_AT_STEP}: {victim.stderr.read()}"
        step = int(line)
        assert time.monotonic() < deadline, "worker too slow"
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=30)
    assert victim.returncode == -signal.SIGKILL
    assert not (tmp_path / "killed.out").exists()
    on_disk = torch.load(tmp_path / "killed.ckpt", weights_only=True)
    # checkpoints every 7 steps: the last one is step 28, 8 batches into the second epoch
    assert (on_disk["epoch"], on_disk["step_in_epoch"], on_disk["global_step"]) == (1, 8, 28)

    finish(run_worker(script, tmp_path, "killed", "resume"))
    finish(run_worker(script, tmp_path, "straight", "fast"))

    resumed = torch.load(tmp_path / "killed.out", weights_only=True)
    straight = torch.load(tmp_path / "straight.out", weights_only=True)
    assert resumed["model"].keys() == straight["model"].keys()
    for key, value in straight["model"].items():
        assert torch.equal(resumed["model"][key], value), f"{key} differs after resume"
    for index, state in straight["optimizer"]["state"].items():
        for name, value in state.items():
            assert torch.equal(resumed["optimizer"]["state"][index][name], value), (index, name)
    for metric in ("train_loss", "train_acc", "val_loss", "val_acc", "lr"):
        assert resumed["history"][metric] == straight["history"][metric], metric
