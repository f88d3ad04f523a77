"""Model zoo: widening keeps every family consistent; width 1 is the published architecture."""

import pytest
import torch
import torchvision
from torch import nn

from autosc import AutoscError, build_model, count, list_models

from ..conftest import zoo_families

CIFAR = [n for n in list_models() if n.endswith("_cifar")]
IMAGENET = [n for n in list_models() if not n.endswith("_cifar")]


def _size(name: str) -> int:
    return 32 if name.endswith("_cifar") else 64


def _uninitialised(build, *args, **kwargs) -> nn.Module:
    """``build(...)`` on the meta device, then given uninitialised CPU memory: the same modules and shapes without
    drawing the initial weights (4 s for VGG-16-BN at width 1 and 1.5), for checks that read no weight values."""
    with torch.device("meta"):
        net = build(*args, **kwargs)
    return net.to_empty(device="cpu")


@pytest.mark.parametrize("name", ["resnet18", pytest.param("resnet50", marks=pytest.mark.slow), "mobilenet_v2"])
def test_width_one_is_torchvision(name):
    ours = build_model(name)
    theirs = getattr(torchvision.models, name)()
    ours.load_state_dict(theirs.state_dict(), strict=True)  # same modules, names and shapes
    x = torch.randn(2, 3, 64, 64)
    ours.eval(), theirs.eval()
    torch.testing.assert_close(ours(x), theirs(x))


@pytest.mark.slow
def test_vgg16_bn_matches_torchvision_cost():
    # our VGG groups conv+BN+ReLU into cells, so names differ; the arithmetic must not.
    ours, theirs = _uninitialised(build_model, "vgg16_bn"), _uninitialised(torchvision.models.vgg16_bn)
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in theirs.parameters())
    assert count(ours, (224, 224), cells=False).macs == count(theirs, (224, 224), cells=False).macs


@pytest.mark.parametrize("name", zoo_families("mobilenet_v2", "mobilenet_v2_cifar", "resnet18", "resnet18_cifar"))
def test_widening_is_consistent(name):
    """Width 1.5 builds and runs; every conv has a multiple of 8 channels near w x base.

    Exact check: each Conv2d's output channels is a multiple of 8 and within
    12% (or 8 channels) of 1.5 x the width-1 count (MobileNetV2 rounds its
    36-channel stage to 40 before the 6x expansion); depthwise convs stay
    depthwise; total MACs grow by a factor in [w, 1.05 w^2] for MobileNetV2
    (its depthwise convs scale by w) and in [0.9 w^2, 1.05 w^2] for the other
    families (only the stem and classifier scale by w; rounding up to a
    multiple of 8 may add a few percent).
    """
    w = 1.5
    base, wide = _uninitialised(build_model, name), _uninitialised(build_model, name, width=w)
    base_convs = [m for m in base.modules() if isinstance(m, nn.Conv2d)]
    wide_convs = [m for m in wide.modules() if isinstance(m, nn.Conv2d)]
    assert len(base_convs) == len(wide_convs)
    for b, c in zip(base_convs, wide_convs, strict=True):
        assert c.out_channels % 8 == 0
        assert abs(c.out_channels - w * b.out_channels) <= max(8, 0.12 * w * b.out_channels)
        if b.groups > 1:
            assert c.groups == c.in_channels == c.out_channels
    size = (_size(name), _size(name))
    wide.eval()
    assert wide(torch.zeros(2, 3, *size)).shape == (2, 1000 if name in IMAGENET else 10)
    ratio = count(wide, size, cells=False).macs / count(base, size, cells=False).macs
    low, high = (w, 1.05 * w * w) if name.startswith("mobilenet") else (0.9 * w * w, 1.05 * w * w)
    assert low <= ratio <= high, ratio


@pytest.mark.parametrize("name", ["mobilenet_v2_cifar", "resnet18_cifar"])
def test_in_channels_and_classes(name):
    model = build_model(name, in_channels=1, num_classes=7).eval()
    assert model(torch.zeros(1, 1, 28, 28)).shape == (1, 7)


def test_cifar_variants_keep_resolution():
    # stride-1 stem (and, for MobileNetV2, a stride-1 24-channel stage): 32 px -> 4 px before pooling
    feats = build_model("mobilenet_v2_cifar").features(torch.zeros(1, 3, 32, 32))
    assert feats.shape[-2:] == (4, 4)
    resnet = build_model("resnet18_cifar")
    assert isinstance(resnet.maxpool, nn.Identity) and resnet.conv1.stride == (1, 1)


def test_user_builder_from_file(tmp_path):
    path = tmp_path / "mynet.py"
    path.write_text(
        "from torch import nn\n"
        "def build(width=1.0, num_classes=10):\n"
        "    c = int(16 * width)\n"
        "    return nn.Sequential(nn.Conv2d(3, c, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),\n"
        "                         nn.Flatten(), nn.Linear(c, num_classes))\n"
        "def fixed():\n"
        "    return nn.Sequential(nn.Conv2d(3, 8, 3))\n"
        "def broken():\n"
        "    return 42\n"
    )
    model = build_model(f"{path}:build", width=2.0, num_classes=5)
    assert model[0].out_channels == 32 and model[-1].out_features == 5
    build_model(f"{path}:fixed")
    with pytest.raises(AutoscError, match="does not take a width"):
        build_model(f"{path}:fixed", width=2.0)
    with pytest.raises(AutoscError, match="has no callable named 'missing'"):
        build_model(f"{path}:missing")
    with pytest.raises(AutoscError, match="not a torch.nn.Module"):
        build_model(f"{path}:broken")


def test_user_builder_from_module():
    model = build_model("autosc.models.resnet:resnet18_cifar", width=0.5)
    assert model.conv1.out_channels == 32


@pytest.mark.parametrize("width", [0, -1.0, float("nan")])
def test_bad_width(width):
    with pytest.raises(AutoscError, match="width must be a positive number"):
        build_model("resnet18", width=width)
