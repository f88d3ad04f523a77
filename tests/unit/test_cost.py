"""Cost accounting: exact MACs agreed by independent counters, the paper convention, budgets."""

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from autosc import AutoscError, build_model, count, parse_budget
from autosc.cost import example_input, fvcore_macs, thop_macs
from autosc.cost.shape_cost import Cost
from autosc.units import parse_bytes, parse_input_size, parse_macs

from ..conftest import zoo_families

SIZES = {"_cifar": [(32, 32), (48, 40)], "": [(64, 64), (96, 80)]}


def _sizes(name):
    return SIZES["_cifar"] if name.endswith("_cifar") else SIZES[""]


@pytest.mark.parametrize("name", zoo_families("resnet18", "resnet18_cifar", "vgg16_bn_cifar"))
@pytest.mark.parametrize("width", [1.0, 0.75])
def test_three_counters_agree(name, width):
    """autosc's MACs == FlopCounterMode FLOPs / 2 == fvcore (conv/linear handles only), at two sizes."""
    model = build_model(name, width=width).eval()
    for size in _sizes(name):
        report = count(model, size)
        x = example_input(model, size)
        with FlopCounterMode(display=False) as fc, torch.no_grad():
            model(x)
        assert report.macs == fc.get_total_flops() // 2
        assert report.macs == fvcore_macs(model, x)
        assert report.params == sum(p.numel() for p in model.parameters())
        assert report.resize_macs == 0


def test_mobilenet_v2_reference_numbers(cli):
    result = cli("count", "mobilenet_v2", "--input-size", "224", "--json")
    assert result.code == 0, result.err
    data = result.json()
    assert data["macs"] == 300_774_272
    assert data["params"] == 3_504_872
    assert data["convention"] == "standard"
    assert "flop_counter" in data["counter"]


def test_paper_convention_reproduces_seed_table(cli):
    data = cli(
        "count", "mobilenet_v2_cifar", "--num-classes", "100", "--input-size", "32", "--convention", "paper", "--json"
    ).json()
    assert round(data["macs"] / 1e6, 1) == 94.7
    assert round(data["params"] / 1e6, 2) == 2.35


def test_paper_convention_is_conv_linear_plus_four_per_bn_element():
    """thop's count checked against a second derivation: FlopCounter MACs + 4 x BN output elements."""
    model = build_model("mobilenet_v2_cifar", num_classes=100).eval()
    bn_elements = []
    hooks = [
        m.register_forward_hook(lambda m, i, o: bn_elements.append(o.numel()))
        for m in model.modules()
        if isinstance(m, nn.BatchNorm2d)
    ]
    standard = count(model, (32, 32), cells=False).macs
    for h in hooks:
        h.remove()
    assert thop_macs(model, example_input(model, (32, 32))) == standard + 4 * sum(bn_elements)


def test_resize_macs_and_activation_memory():
    """Bilinear resize: 4 MACs per output element, apart from conv MACs; activations are fresh tensors only."""

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 8, 3, padding=1, bias=False)
            self.relu = nn.ReLU(inplace=True)

        def forward(self, x):
            x = self.relu(self.conv(x))  # conv output is fresh; in-place ReLU adds nothing
            return nn.functional.interpolate(x, size=(5, 7), mode="bilinear", align_corners=False)

    report = count(Net(), (10, 12))
    assert report.macs == 8 * 3 * 9 * 10 * 12
    assert report.resize_macs == 4 * 8 * 5 * 7
    assert report.activation_bytes == 4 * (8 * 10 * 12 + 8 * 5 * 7)


def test_per_cell_breakdown_sums_to_total():
    model = build_model("resnet18")
    report = count(model, (64, 64))
    assert sum(c.macs for c in report.cells) == report.macs
    assert [c.name for c in report.cells][:5] == ["conv1", "bn1", "relu", "maxpool", "layer1.0"]


def test_count_table_names_the_counter(cli):
    result = cli("count", "resnet18_cifar", "--cross-check")
    assert result.code == 0, result.err
    assert "torch.utils.flop_counter" in result.out
    assert "fvcore" in result.out and "layer4.1" in result.out


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("300M", (300_000_000, None)),
        ("1.2G", (1_200_000_000, None)),
        ("95000000", (95_000_000, None)),
        ("60%", (None, 0.6)),
        ("2.5e8", (250_000_000, None)),
    ],
)
def test_budget_grammar(text, expected):
    assert parse_macs(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"), [("4MiB", 4 * 2**20), ("512KB", 512_000), ("1000", 1000), ("1.5GiB", 3 * 2**29)]
)
def test_memory_grammar(text, expected):
    assert parse_bytes(text) == expected


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("300X", "unknown unit 'X'"),
        ("abc", "cannot read"),
        ("0", "at least 1"),
        ("0%", "a percentage must be a positive number"),
        ("300m", "unknown unit 'm'"),
        ("", "cannot read"),
    ],
)
def test_budget_errors(text, fragment):
    with pytest.raises(
        AutoscError, match=fragment.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[").replace("]", r"\]")
    ):
        parse_macs(text)


def test_memory_errors_and_relative_budget():
    with pytest.raises(AutoscError, match="unknown unit 'MIBS'|unknown unit 'MiBs'"):
        parse_bytes("4MiBs")
    assert parse_budget(budget="60%", human=Cost(1000, 0, 0)).macs == 600
    with pytest.raises(AutoscError, match="no budget given"):
        parse_budget()


def test_input_size_grammar():
    assert parse_input_size("224") == (224, 224)
    assert parse_input_size("32x48") == (32, 48)
    for bad in ("0", "32x0", "-5", "big"):
        with pytest.raises(AutoscError):
            parse_input_size(bad)


def test_a_trace_on_the_meta_device_records_what_the_cpu_trace_records():
    """A bilinear resize on meta takes its output shape without running torch's slow decomposition
    (autosc/cost/trace.py: _meta_resize); every record (shape, MACs, resize MACs, bytes) must stay the CPU's."""
    import copy

    import torch.nn.functional as F

    from autosc.cost.trace import record_ops

    class Resizing(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.bn, self.b = nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.Conv2d(8, 4, 3, stride=2)

        def forward(self, x):
            x = F.interpolate(self.bn(self.a(x)), size=(13, 7), mode="bilinear", align_corners=False)
            return self.b(F.interpolate(x, scale_factor=1.5, mode="bilinear", align_corners=False))

    net, x = Resizing().eval(), torch.randn(2, 3, 20, 18)
    cpu = record_ops(net, x)
    meta = record_ops(copy.deepcopy(net).to("meta"), x.to("meta"))
    assert meta == cpu
    assert [r.shape for r in cpu if "upsample" in r.op] == [(2, 8, 13, 7), (2, 8, 19, 10)]
    assert all(r.resize_macs == 4 * 2 * 8 * 13 * 7 for r in cpu[:3] if "upsample" in r.op)
