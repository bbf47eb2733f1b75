"""Batched tensor augmentation: same semantics as torchvision's per-image transforms."""

import pytest
import torch
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

from coursekit.data import TensorData, TensorLoader, augment


def batch(n=16, c=3, h=10, w=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, c, h, w), dtype=torch.uint8, generator=g)


@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate"])
@pytest.mark.parametrize("size", [None, (8, 9)])
def test_random_crop_equals_torchvision_pad_then_crop(mode, size):
    x = batch().float()
    padding, fill = 3, 7.0
    gen = torch.Generator().manual_seed(5)
    replay = torch.Generator().manual_seed(5)
    out = augment.random_crop(x, size, padding, gen, padding_mode=mode, fill=fill)
    th, tw = size or x.shape[-2:]
    tops = torch.randint(0, x.shape[2] + 2 * padding - th + 1, (len(x),), generator=replay)
    lefts = torch.randint(0, x.shape[3] + 2 * padding - tw + 1, (len(x),), generator=replay)
    padded = TF.pad(x, [padding], fill=fill, padding_mode="edge" if mode == "replicate" else mode)
    for i in range(len(x)):
        expected = TF.crop(padded[i], int(tops[i]), int(lefts[i]), th, tw)
        assert torch.equal(out[i], expected)


def test_random_crop_works_on_uint8_like_on_float():
    x = batch()
    a = augment.random_crop(x, None, 4, torch.Generator().manual_seed(1))
    b = augment.random_crop(x.float(), None, 4, torch.Generator().manual_seed(1))
    assert a.dtype == torch.uint8 and torch.equal(a.float(), b)


def test_random_crop_draws_every_offset():
    x = torch.zeros(4000, 1, 8, 8)
    x[:, :, 0, 0] = 1  # track where the top-left pixel lands
    out = augment.random_crop(x, None, 2, torch.Generator().manual_seed(0))
    rows, cols = torch.nonzero(out[:, 0] == 1, as_tuple=True)[1:]
    seen = set(zip(rows.tolist(), cols.tolist(), strict=True))
    assert seen == {(r, c) for r in range(3) for c in range(3)}  # 5×5 offsets, 3×3 keep the pixel


def test_no_padding_full_size_crop_is_identity():
    x = batch()
    assert torch.equal(augment.random_crop(x, None, 0), x)


def test_hflip_probabilities_and_generator():
    x = batch(n=64)
    assert torch.equal(augment.random_hflip(x, 0.0), x)
    assert torch.equal(augment.random_hflip(x, 1.0), x.flip(3))
    a = augment.random_hflip(x, 0.5, torch.Generator().manual_seed(3))
    b = augment.random_hflip(x, 0.5, torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    flipped = [torch.equal(a[i], x[i].flip(2)) for i in range(len(x))]
    kept = [torch.equal(a[i], x[i]) for i in range(len(x))]
    assert all(f or k for f, k in zip(flipped, kept, strict=True))
    assert 10 < sum(flipped) < 54


def test_normalize_matches_torchvision():
    x = batch(n=4)
    mean, std = (0.4, 0.5, 0.6), (0.2, 0.25, 0.3)
    ours = augment.Normalize(mean, std)(x)
    reference = v2.Compose([v2.ToDtype(torch.float32, scale=True), v2.Normalize(mean, std)])(x)
    torch.testing.assert_close(ours, reference)


def test_compose_in_tensor_loader_is_reproducible_per_epoch():
    images = batch(n=40, c=1, h=8, w=8)
    data = TensorData("synthetic", images, torch.arange(40) % 3, ["a", "b", "c"])
    pipeline = augment.Compose([augment.RandomCrop(8, padding=2), augment.RandomHorizontalFlip(),
                                augment.Normalize((0.5,), (0.25,))])
    loader = TensorLoader(data, 16, shuffle=True, seed=7, normalize=False, augment=pipeline)
    first = [x for x, _ in loader]
    again = [x for x, _ in loader]
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    loader.set_epoch(1)
    other = [x for x, _ in loader]
    assert not torch.equal(first[0], other[0])
    assert first[0].shape == (16, 1, 8, 8) and first[0].dtype == torch.float32


def test_bad_input_is_explained():
    with pytest.raises(ValueError, match="N×C×H×W"):
        augment.random_crop(torch.zeros(3, 8, 8), None, 2)
    with pytest.raises(ValueError, match="larger than the padded image"):
        augment.random_crop(torch.zeros(2, 1, 8, 8), 20, 2)
    with pytest.raises(ValueError, match="padding_mode"):
        augment.RandomCrop(8, padding_mode="wrap")
    with pytest.raises(ValueError, match="probability"):
        augment.RandomHorizontalFlip(1.5)
    with pytest.raises(ValueError, match="channels"):
        augment.normalize(torch.zeros(2, 3, 4, 4), (0.5,), (0.2,))
