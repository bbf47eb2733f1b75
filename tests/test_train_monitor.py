"""coursekit.train.monitor: end-of-epoch evaluation on extra data, without changing training."""

import pytest
import torch
from torch import nn

from coursekit.data import TensorData, TensorLoader
from coursekit.train import fit
from coursekit.train.monitor import EvaluateEachEpoch


def _data(n=200, seed=0):
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 1, 6, 6), dtype=torch.uint8, generator=g)
    labels = (images[:, 0, :, :3].float().mean((1, 2)) > 127.5).long()
    return TensorData("synthetic", images, labels, ["right", "left"])


def _train(callbacks=()):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(36, 16), nn.ReLU(), nn.Linear(16, 2))
    train = TensorLoader(_data(), 20, shuffle=True, seed=0, normalize=False)
    val = TensorLoader(_data(), 100, normalize=False)
    history = fit(model, train, val, epochs=3, progress=False, callbacks=callbacks,
                  optimizer=torch.optim.SGD(model.parameters(), lr=0.05))
    return history, val


def test_evaluating_the_validation_loader_reproduces_the_validation_history():
    callback = EvaluateEachEpoch(TensorLoader(_data(), 100, normalize=False))
    history, _ = _train([callback])
    assert callback.loss == pytest.approx(history.val_loss)
    assert callback.acc == pytest.approx(history.val_acc)


def test_the_callback_does_not_change_the_training_run():
    plain, _ = _train()
    monitored, _ = _train([EvaluateEachEpoch(TensorLoader(_data(seed=1), 50, normalize=False))])
    assert monitored.train_loss == plain.train_loss
    assert monitored.val_loss == plain.val_loss


def test_state_round_trips_through_a_checkpoint_dict():
    callback = EvaluateEachEpoch([])
    callback.load_state_dict({"loss": [0.5, 0.25], "acc": [0.75, 0.875]})
    restored = EvaluateEachEpoch([])
    restored.load_state_dict(callback.state_dict())
    assert (restored.loss, restored.acc) == ([0.5, 0.25], [0.75, 0.875])
