"""The trainer: metrics, schedules, clipping, callbacks, the fast path, resume, errors.

These tests use small synthetic tensors (they test the loop, not a dataset): each image's
class is decided by the brightness of its left and top halves, which a tiny CNN learns.
"""

import json
import math

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from coursekit.data import TensorData, TensorLoader, augment
from coursekit.train import (
    Callback,
    EarlyStopping,
    History,
    distributed,
    evaluate,
    fit,
    param_groups,
)
from coursekit.train.live import LivePlot
from coursekit.viz import plots


def synthetic(n=240, seed=0):
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 1, 8, 8), dtype=torch.uint8, generator=g)
    left = images[:, 0, :, :4].float().mean((1, 2)) > 127.5
    top = images[:, 0, :4].float().mean((1, 2)) > 127.5
    return TensorData("synthetic", images, left.long() + 2 * top.long(), list("abcd"))


def small_cnn():
    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                         nn.Flatten(), nn.Linear(8 * 64, 4))


def loaders(batch=32, aug=None):
    data = synthetic()
    return (TensorLoader(data, batch, shuffle=True, seed=0, normalize=False, augment=aug),
            TensorLoader(data, 120, normalize=False))


def test_history_holds_plain_per_epoch_metrics_and_training_learns():
    torch.manual_seed(0)
    model = small_cnn()
    train, val = loaders()
    history = fit(model, train, val, epochs=8, progress=False, topk=(2,),
                  optimizer=torch.optim.Adam(model.parameters(), lr=1e-2))
    assert isinstance(history, History) and history.epoch == list(range(1, 9))
    flat = history.as_dict()
    json.dumps(flat)  # plain data
    for name in ("train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds", "val_top2"):
        assert len(flat[name]) == 8 and all(isinstance(v, float) for v in flat[name])
    assert history.train_loss[-1] < 0.2 * history.train_loss[0]
    assert history.val_acc[-1] > 0.9
    assert all(t2 >= t1 for t1, t2 in zip(history.val_acc, history["val_top2"], strict=True))
    assert History.from_dict(flat) == history
    final = evaluate(model, val, topk=(1, 4))
    assert final["acc"] == pytest.approx(history.val_acc[-1]) == final["top1"]
    assert final["top4"] == 1.0  # every class is among the top 4 of 4


def test_positional_call_with_a_dataloader_and_no_validation():
    torch.manual_seed(0)
    data = synthetic()
    dataset = TensorDataset(data.images.float() / 255, data.labels)
    model = small_cnn()
    history = fit(model, DataLoader(dataset, batch_size=40, shuffle=True), epochs=2,
                  optimizer=torch.optim.SGD(model.parameters(), lr=0.1), progress=False)
    assert len(history.train_loss) == 2 and history.val_loss == []
    assert history.names() == ["epoch", "train_loss", "train_acc", "lr", "seconds"]


def test_one_cycle_is_stepped_per_batch_and_plateau_gets_the_validation_loss():
    torch.manual_seed(0)
    model = small_cnn()
    train, val = loaders()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    one_cycle = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=3 * len(train))
    history = fit(model, train, val, epochs=3, optimizer=opt, scheduler=one_cycle, progress=False)
    assert one_cycle.last_epoch == 3 * len(train)
    assert history.lr[0] == pytest.approx(0.1 / 25)  # one-cycle's starting learning rate

    seen = []

    class Plateau(torch.optim.lr_scheduler.ReduceLROnPlateau):
        def step(self, metrics):
            seen.append(metrics)
            super().step(metrics)

    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    history = fit(model, train, val, epochs=2, optimizer=opt, scheduler=Plateau(opt),
                  progress=False)
    assert seen == history.val_loss


def test_gradient_clipping_bounds_the_norm_seen_by_the_optimizer():
    norms = []

    class RecordingSGD(torch.optim.SGD):
        def step(self, closure=None):
            grads = [p.grad for group in self.param_groups for p in group["params"]]
            norms.append(torch.linalg.vector_norm(torch.stack(
                [torch.linalg.vector_norm(g) for g in grads if g is not None])).item())
            return super().step(closure)

    torch.manual_seed(0)
    model = small_cnn()
    train, _ = loaders()
    fit(model, train, epochs=1, optimizer=RecordingSGD(model.parameters(), lr=0.5),
        clip_grad_norm=0.05, progress=False)
    assert len(norms) == len(train) and max(norms) <= 0.05 * (1 + 1e-4)


def test_early_stopping_stops_and_restores_the_best_weights():
    snapshots = {}

    class Snapshot(Callback):
        def on_epoch_end(self, epoch, history, model):
            snapshots[epoch] = {k: v.clone() for k, v in model.state_dict().items()}

    torch.manual_seed(0)
    model = small_cnn()
    train, val = loaders()
    # the training loss falls every epoch, so "maximise it" improves only in epoch 1
    stopper = EarlyStopping(monitor="train_loss", mode="max", patience=2)
    history = fit(model, train, val, epochs=10, callbacks=[Snapshot(), stopper], progress=False,
                  optimizer=torch.optim.Adam(model.parameters(), lr=1e-2))
    assert len(history) == 3 and stopper.best_epoch == 1 and stopper.stopped_epoch == 3
    restored = model.state_dict()
    assert all(torch.equal(restored[k], snapshots[1][k]) for k in restored)
    assert not all(torch.equal(restored[k], snapshots[3][k]) for k in restored)


def test_early_stopping_without_validation_says_how_to_fix_it():
    model = small_cnn()
    train, _ = loaders()
    with pytest.raises(ValueError, match="Pass a val_loader"):
        fit(model, train, epochs=2, callbacks=[EarlyStopping()], progress=False,
            optimizer=torch.optim.SGD(model.parameters(), lr=0.1))


def test_fast_path_runs_on_cpu_bf16_channels_last_and_compiled():
    seen = {}

    def record(module, inputs, output):
        seen["input_channels_last"] = inputs[0].is_contiguous(memory_format=torch.channels_last)
        seen["output_dtype"] = output.dtype

    torch.manual_seed(0)
    model = small_cnn()
    model[0].register_forward_hook(record)
    train, val = loaders()
    history = fit(model, train, val, epochs=2, amp="bf16", channels_last=True,
                  compile={"backend": "eager"}, progress=False,
                  optimizer=torch.optim.Adam(model.parameters(), lr=1e-2))
    assert seen == {"input_channels_last": True, "output_dtype": torch.bfloat16}
    assert model[0].weight.dtype == torch.float32  # master weights stay fp32
    assert all(math.isfinite(v) for v in history.train_loss)
    assert history.train_loss[-1] < history.train_loss[0]


def test_an_already_compiled_model_is_trained_and_checkpointed_by_its_plain_names(tmp_path):
    torch.manual_seed(0)
    model = small_cnn()
    compiled = torch.compile(model, backend="eager")
    train, _ = loaders()
    before = model[0].weight.clone()
    fit(compiled, train, epochs=1, optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
        checkpoint=tmp_path / "run.pt", progress=False)
    assert not torch.equal(before, model[0].weight)
    saved = torch.load(tmp_path / "run.pt", weights_only=True)["model"]
    assert saved.keys() == model.state_dict().keys()


def test_default_fast_path_is_plain_fp32_on_cpu():
    seen = {}
    model = small_cnn()

    def record(module, inputs, output):
        seen["dtype"] = output.dtype

    model[0].register_forward_hook(record)
    train, _ = loaders()
    fit(model, train, epochs=1, optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
        progress=False)
    assert seen["dtype"] == torch.float32


def test_regression_losses_work_and_accuracy_is_nan():
    torch.manual_seed(0)
    x = torch.randn(64, 3)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5]])
    model = nn.Linear(3, 1)
    loader = DataLoader(TensorDataset(x, y), batch_size=16)
    history = fit(model, loader, loader, epochs=30, loss_fn=nn.MSELoss(), progress=False,
                  optimizer=torch.optim.SGD(model.parameters(), lr=0.1))
    assert history.val_loss[-1] < 1e-3
    assert math.isnan(history.train_acc[-1]) and math.isnan(history.val_acc[-1])


class Crash(Exception):
    pass


class CrashAt(Callback):
    def __init__(self, step):
        self.step = step

    def on_batch_end(self, step, loss):
        if step == self.step:
            raise Crash


def resumable_run(path, *, crash_at=None, resume=False):
    torch.manual_seed(0)
    aug = augment.Compose([augment.RandomCrop(8, padding=2), augment.RandomHorizontalFlip()])
    train, val = loaders(batch=24, aug=aug)
    model = nn.Sequential(small_cnn()[:-1], nn.Dropout(0.3), nn.Linear(8 * 64, 4))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=1e-2, total_steps=3 * len(train))
    history = fit(model, train, val, epochs=3, optimizer=opt, scheduler=sched, progress=False,
                  checkpoint=path, checkpoint_every=4, resume=resume, clip_grad_norm=1.0,
                  callbacks=[EarlyStopping(patience=5), CrashAt(crash_at)])
    return model, opt, history


def test_resume_after_an_exception_mid_epoch_is_bit_identical(tmp_path):
    """In-process version of tests/test_train_resume.py (which uses a real SIGKILL)."""
    model, opt, history = resumable_run(tmp_path / "a.pt")
    with pytest.raises(Crash):
        resumable_run(tmp_path / "b.pt", crash_at=14)  # 10 batches/epoch: mid epoch 2
    saved = torch.load(tmp_path / "b.pt", weights_only=True)
    assert (saved["epoch"], saved["step_in_epoch"], saved["global_step"]) == (1, 2, 12)
    resumed, resumed_opt, resumed_history = resumable_run(tmp_path / "b.pt", resume=True)
    for key, value in model.state_dict().items():
        assert torch.equal(value, resumed.state_dict()[key]), key
    assert resumed_history.train_loss == history.train_loss
    assert resumed_history.val_loss == history.val_loss
    assert resumed_history.lr == history.lr
    # a finished checkpoint resumes to the same result without training again
    again, _, again_history = resumable_run(tmp_path / "b.pt", resume=True)
    assert again_history.train_loss == history.train_loss
    assert all(torch.equal(v, again.state_dict()[k]) for k, v in model.state_dict().items())


def test_resume_with_a_different_loader_is_refused(tmp_path):
    with pytest.raises(Crash):
        resumable_run(tmp_path / "c.pt", crash_at=6)
    model = nn.Sequential(small_cnn()[:-1], nn.Dropout(0.3), nn.Linear(8 * 64, 4))
    train, _ = loaders(batch=50)
    opt = torch.optim.AdamW(model.parameters())
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=1e-2, total_steps=3 * len(train))
    with pytest.raises(ValueError, match="batches per epoch"):
        fit(model, train, epochs=3, optimizer=opt, scheduler=sched, checkpoint=tmp_path / "c.pt",
            resume=True, progress=False, callbacks=[EarlyStopping(), CrashAt(None)])


def test_bad_arguments_are_explained():
    model = small_cnn()
    train, _ = loaders()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="positive integer"):
        fit(model, train, epochs=0, optimizer=opt)
    with pytest.raises(ValueError, match="none of this model's parameters"):
        fit(model, train, epochs=1, optimizer=torch.optim.SGD(small_cnn().parameters(), lr=0.1))
    with pytest.raises(TypeError, match="torch.optim.Optimizer"):
        fit(model, train, epochs=1, optimizer="sgd")
    with pytest.raises(ValueError, match="needs a checkpoint path"):
        fit(model, train, epochs=1, optimizer=opt, checkpoint_every=10)
    with pytest.raises(ValueError, match="bf16"):
        fit(model, train, epochs=1, optimizer=opt, amp="fp16")
    with pytest.raises(ValueError, match="no batches"):
        fit(model, [], epochs=1, optimizer=opt)
    with pytest.raises(ValueError, match="needs at least 9 classes"):
        evaluate(model, train, topk=(9,))


def test_param_groups_do_not_decay_biases_or_norm_parameters():
    model = small_cnn()
    decay, no_decay = param_groups(model, 5e-4)
    assert decay["weight_decay"] == 5e-4 and no_decay["weight_decay"] == 0.0
    assert {p.dim() for p in decay["params"]} == {2, 4}
    assert len(no_decay["params"]) == 4  # conv bias, BN weight and bias, linear bias


def test_sharded_loader_splits_each_global_batch():
    loader = TensorLoader(synthetic(n=41), 10, shuffle=True, seed=3, normalize=False)
    full = list(loader)
    shards = [list(distributed.ShardedLoader(loader, rank, 3)) for rank in range(3)]
    assert [len(s) for s in shards] == [4, 4, 4]  # the last global batch (1 example) is dropped
    for i in range(4):
        joined = torch.cat([shards[r][i][1] for r in range(3)])
        assert torch.equal(joined, full[i][1])
    evaluation = distributed.ShardedLoader(loader, 0, 3, drop_small_last=False)
    assert len(evaluation) == 5
    assert distributed.setup().world_size == 1  # plain python: no process group


def test_plot_history_draws_loss_and_accuracy_panels():
    history = History(epoch=[1, 2], train_loss=[1.0, 0.5], train_acc=[0.5, 0.8],
                      val_loss=[1.1, 0.7], val_acc=[0.4, 0.7], lr=[0.1, 0.1], seconds=[1, 1],
                      val_topk={2: [0.8, 0.9]})
    figure = plots.plot_history(history)
    assert [ax.get_ylabel() for ax in figure.axes] == ["loss", "accuracy"]
    assert len(figure.axes[1].lines) == 3
    with pytest.raises(ValueError, match="empty"):
        plots.plot_history(History())
    LivePlot().on_epoch_end(2, history, None)  # outside a notebook: nothing to draw


# --- Exact values the loop must produce (each test fails when its behaviour is broken) ---


def ranked_logits():
    """Four examples over five classes whose true class ranks 1st, 2nd, 3rd and 5th."""
    logits = torch.tensor([[5.0, 4, 3, 2, 1],
                           [4.0, 5, 3, 2, 1],
                           [3.0, 4, 5, 2, 1],
                           [1.0, 4, 3, 2, 5]])
    return logits, torch.zeros(4, dtype=torch.long)  # class 0 is the truth every time


def identity_linear(n=5):
    model = nn.Linear(n, n)
    with torch.no_grad():
        model.weight.copy_(torch.eye(n))
        model.bias.zero_()
    return model


def test_topk_accuracies_for_k_above_one_are_exact():
    logits, y = ranked_logits()
    loader = DataLoader(TensorDataset(logits, y), batch_size=3)  # batches of 3 and 1
    metrics = evaluate(identity_linear(), loader, topk=(3, 2, 5, 4))
    assert metrics["acc"] == 0.25
    assert (metrics["top2"], metrics["top3"], metrics["top4"], metrics["top5"]) == (
        0.5, 0.75, 0.75, 1.0)
    model = identity_linear()
    history = fit(model, loader, loader, epochs=1, topk=(2, 3), progress=False,
                  optimizer=torch.optim.SGD(model.parameters(), lr=0.0))
    assert history["val_top2"] == [0.5] and history["val_top3"] == [0.75]


def test_train_and_val_loss_are_exact_per_example_means_over_uneven_batches():
    """Single process: the epoch's loss is the mean over examples, not over batches."""
    torch.manual_seed(0)
    x, y = torch.randn(10, 3), torch.tensor([0, 1, 2, 0, 1, 2, 0, 0, 2, 1])
    model = nn.Linear(3, 3)  # no dropout or batch norm: train and eval outputs agree
    with torch.no_grad():
        logits = model(x)
        expected_loss = nn.functional.cross_entropy(logits, y, reduction="sum").item() / 10
        expected_acc = (logits.argmax(1) == y).sum().item() / 10
        batch_means = [nn.functional.cross_entropy(logits[i:i + 4], y[i:i + 4]).item()
                       for i in range(0, 10, 4)]
    assert abs(sum(batch_means) / 3 - expected_loss) > 1e-3  # the wrong mean would show
    loader = DataLoader(TensorDataset(x, y), batch_size=4)  # 4 + 4 + 2 examples
    history = fit(model, loader, loader, epochs=2, progress=False,
                  optimizer=torch.optim.SGD(model.parameters(), lr=0.0))  # weights stay put
    for name, value in (("train_loss", expected_loss), ("val_loss", expected_loss),
                        ("train_acc", expected_acc), ("val_acc", expected_acc)):
        assert history[name] == pytest.approx([value, value], rel=1e-6), name
    assert evaluate(model, loader)["loss"] == pytest.approx(expected_loss, rel=1e-6)


def test_cyclic_lr_is_stepped_once_per_batch():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 4))
    train, _ = loaders(batch=40)  # 6 batches per epoch
    steps = len(train)

    def cyclic(opt):
        return torch.optim.lr_scheduler.CyclicLR(opt, base_lr=0.01, max_lr=0.1,
                                                 step_size_up=4)

    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    sched = cyclic(opt)
    history = fit(model, train, epochs=2, optimizer=opt, scheduler=sched, progress=False)
    assert sched.last_epoch == 2 * steps
    reference = cyclic(torch.optim.SGD(nn.Linear(1, 1).parameters(), lr=0.01, momentum=0.9))
    expected = []
    for _ in range(2):
        expected.append(reference.get_last_lr()[0])
        for _ in range(steps):
            reference.optimizer.step()
            reference.step()
    assert history.lr == pytest.approx(expected) and expected[0] != pytest.approx(expected[1])
    # asked for explicitly, the same scheduler is stepped per epoch instead
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    sched = cyclic(opt)
    fit(model, train, epochs=2, optimizer=opt, scheduler=sched, scheduler_step="epoch",
        progress=False)
    assert sched.last_epoch == 2


def _feed(stopper, values, monitor="val_loss"):
    """Run ``stopper`` over a sequence of metric values; the epochs at which it said stop."""
    history, model, stops = History(), nn.Linear(1, 1), []
    for epoch, value in enumerate(values, start=1):
        history.epoch.append(epoch)
        history[monitor].append(value)
        if stopper.on_epoch_end(epoch, history, model):
            stops.append(epoch)
    return stops


def test_early_stopping_min_delta_is_a_strict_margin_in_both_modes():
    # values exact in binary: 1.0 - 0.25 == 0.75 is "not better by more than 0.25"
    stopper = EarlyStopping(monitor="val_loss", patience=3, min_delta=0.25)
    assert _feed(stopper, [1.0, 0.875, 0.75, 0.5]) == []
    assert (stopper.best_epoch, stopper.best, stopper.wait) == (4, 0.5, 0)
    stopper = EarlyStopping(monitor="val_loss", patience=2, min_delta=0.25)
    assert _feed(stopper, [1.0, 0.875, 0.75]) == [3] and stopper.best_epoch == 1
    without = EarlyStopping(monitor="val_loss", patience=2)
    assert _feed(without, [1.0, 0.875, 0.75]) == [] and without.best_epoch == 3
    maximise = EarlyStopping(monitor="val_acc", patience=3, min_delta=0.25)
    assert _feed(maximise, [0.25, 0.375, 0.5], monitor="val_acc") == []
    assert (maximise.best_epoch, maximise.wait) == (1, 2)  # 0.5 only ties the margin
    assert _feed(maximise, [0.625], monitor="val_acc") == [] and maximise.best == 0.625
