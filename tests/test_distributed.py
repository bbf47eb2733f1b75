"""``torchrun --nproc_per_node 2`` on CPU (Gloo) matches one process with the same global batch.

Synthetic tensors again (this tests the data-parallel plumbing, not a dataset). 251 examples
in global batches of 32 make the last batch 27 examples, split 14/13, which exercises the
loss weighting for unequal shards; the batched crop/flip augmentation must also be the same
as in the single process.
"""

import os
import subprocess
import sys
import textwrap

import torch

WORKER = textwrap.dedent('''
    import sys
    import torch
    from torch import nn
    from coursekit.data import augment
    from coursekit.train import distributed
    from coursekit.data import TensorData, TensorLoader
    from coursekit.train import fit

    ctx = distributed.setup()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    images = torch.randint(0, 256, (251, 1, 12, 12), dtype=torch.uint8, generator=g)
    labels = (images[:, 0, :, :6].float().mean((1, 2)) > 127.5).long()
    labels += 2 * (images[:, 0, :6].float().mean((1, 2)) > 127.5).long()
    data = TensorData("synthetic", images, labels, list("abcd"))
    crop_flip = augment.Compose([augment.RandomCrop(12, padding=2), augment.RandomHorizontalFlip()])
    train = TensorLoader(data, 32, shuffle=True, seed=0, normalize=False, augment=crop_flip)
    val = TensorLoader(data, 100, normalize=False)
    model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Flatten(),
                          nn.Linear(8 * 144, 4))
    seen = [0]  # training examples this process computed on
    model.register_forward_pre_hook(
        lambda m, args: seen.__setitem__(0, seen[0] + len(args[0]) * m.training))
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.7)
    history = fit(model, train, val, epochs=3, optimizer=opt, scheduler=sched, clip_grad_norm=5.0,
                  checkpoint=sys.argv[1] + ".ckpt")
    seen_by_rank = distributed.all_gather_object(seen[0])
    if ctx.is_main:
        torch.save({"model": model.state_dict(), "history": history.as_dict(),
                    "world_size": ctx.world_size, "seen": seen_by_rank}, sys.argv[1])
    distributed.cleanup()
''')


def run(args, tmp_path):
    result = subprocess.run(
        [sys.executable, *args], cwd=tmp_path, capture_output=True, text=True, timeout=180,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def test_two_process_gloo_run_matches_a_single_process(tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    two = run(["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               str(script), str(tmp_path / "two.pt")], tmp_path)
    run([str(script), str(tmp_path / "one.pt")], tmp_path)

    one = torch.load(tmp_path / "one.pt", weights_only=True)
    pair = torch.load(tmp_path / "two.pt", weights_only=True)
    assert (one["world_size"], pair["world_size"]) == (1, 2)
    # each process computed on its half of every global batch: 3 epochs × 251 examples in all
    assert one["seen"] == [3 * 251] and pair["seen"] == [3 * 126, 3 * 125]
    for key, value in one["model"].items():
        torch.testing.assert_close(pair["model"][key], value, rtol=1e-4, atol=1e-5)
    for metric in ("train_loss", "val_loss", "train_acc", "val_acc", "lr"):
        torch.testing.assert_close(torch.tensor(pair["history"][metric]),
                                   torch.tensor(one["history"][metric]), rtol=1e-5, atol=1e-6)
    # rank 0 alone writes the checkpoint (holding both ranks' RNG states) and shows progress
    assert len(torch.load(tmp_path / "two.pt.ckpt", weights_only=True)["ranks"]) == 2
    assert not list(tmp_path.glob(".two.pt.ckpt.*"))
    assert two.stderr.count("fit:   0%") == 1  # one progress bar, not one per process
