"""ResNet-18/34 in torchvision's layout: same parameters, same function, CIFAR stem."""

import pytest
import torch
from torchvision import models as tv

from coursekit.models.resnet import resnet18, resnet34


@pytest.mark.parametrize(("ours", "theirs"), [(resnet18, tv.resnet18), (resnet34, tv.resnet34)])
def test_imagenet_stem_matches_torchvision_exactly(ours, theirs):
    torch.manual_seed(0)
    reference = theirs().eval()
    model = ours(1000, cifar=False).eval()
    count = sum(p.numel() for p in model.parameters())
    assert count == sum(p.numel() for p in reference.parameters())
    model.load_state_dict(reference.state_dict())  # same names and shapes, strictly
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(model(x), reference(x))


def test_cifar_stem_keeps_32x32_resolution_for_four_stages():
    model = resnet18(10).eval()
    shapes = []
    for stage in (model.layer1, model.layer2, model.layer3, model.layer4):
        stage.register_forward_hook(lambda m, i, o: shapes.append(tuple(o.shape[1:])))
    with torch.no_grad():
        assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    assert shapes == [(64, 32, 32), (128, 16, 16), (256, 8, 8), (512, 4, 4)]
    imagenet = sum(p.numel() for p in resnet18(10, cifar=False).parameters())
    # the 3×3 stem has 3·64·9 weights instead of 3·64·49
    assert sum(p.numel() for p in model.parameters()) == imagenet - 3 * 64 * (49 - 9)
