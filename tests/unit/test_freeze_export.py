"""Freeze, checkpoints and ONNX export of learned shapes, for every zoo family."""

import json

import onnx
import pytest
import torch

import autosc
from autosc import count, list_models
from autosc.checkpoint import load_checkpoint, save_checkpoint
from autosc.cost.width import human_cost
from autosc.export import export_onnx, resize_nodes
from autosc.freeze import FrozenAdaptor, build_frozen, freeze, load_frozen, save_frozen
from autosc.models import ModelSpec

from ..conftest import assert_one_line_error
from ..helpers import train_a_little


def _size(name: str) -> int:
    return 32 if name.endswith("_cifar") else 64


@pytest.mark.slow
@pytest.mark.parametrize("name", list_models())
def test_freeze_and_export_every_family(name, tmp_path):
    size = _size(name)
    width = 0.25 if name == "vgg16_bn" else 0.5  # the shape logic does not care; the test time does
    widened_macs, _ = human_cost(ModelSpec(name, width, 10), (size, size))
    plan = autosc.plan(name, budget=int(0.8 * widened_macs), width=width, input_size=size, num_classes=10)
    network = plan.network
    before = network.factors()
    # enough to move weights, BN statistics and alphas (checked below); the helper's batch of 8: on an AMD EPYC host
    # a batch of 2 made mobilenet_v2's 1x1 batch norms blow the alpha gradients up to NaN within two steps
    train_a_little(network)
    assert network.factors() != before  # the alphas moved, so the shape is a learned one
    frozen, spec = freeze(network)
    assert all(not hasattr(m, "alpha") for m in frozen.modules() if isinstance(m, FrozenAdaptor))

    x = torch.randn(4, 3, size, size, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        reference, ours = network(x), frozen(x)
    scale = reference.abs().max().item()
    assert reference.std().item() > 1e-3  # trained logits, not the near-zero output of a fresh network
    assert (reference - ours).abs().max().item() <= 1e-5 * max(scale, 1.0)

    # budget met by the frozen network, counted by the counters (not the cost model)
    frozen_cost = count(frozen, (size, size), cells=False)
    assert frozen_cost.total_macs <= plan.budget.macs

    # the shape spec alone rebuilds the architecture; weights load strictly
    path = save_frozen(frozen, spec, tmp_path / "frozen.pt")
    reloaded, _ = load_frozen(path)
    with torch.no_grad():
        torch.testing.assert_close(reloaded(x), ours, rtol=0, atol=0)
    assert json.loads(path.with_suffix(".shape.json").read_text()) == spec
    assert [m.size for m in build_frozen(spec).modules() if isinstance(m, FrozenAdaptor)] == [
        tuple(a["size"]) for a in spec["adaptors"]
    ]

    # ONNX: checked at both ORT optimisation levels inside export_onnx (rtol 1e-3, atol 1e-4)
    result = export_onnx(frozen, (size, size), tmp_path / "model.onnx", opset=18, exporter="dynamo")
    assert result.max_abs_diff is not None and result.max_abs_diff <= 1e-4 + 1e-3 * scale
    nodes = resize_nodes(onnx.load(tmp_path / "model.onnx"))
    assert nodes and all(n["uses"] == "sizes" and n["spatial_size"] is not None for n in nodes)
    expected = {tuple(a["size"]) for a in spec["adaptors"]}
    assert {tuple(n["spatial_size"]) for n in nodes} <= expected


@pytest.mark.slow
def test_checkpoint_roundtrip_and_safe_loading(tmp_path):
    plan = autosc.plan("mobilenet_v2_cifar", budget="30M", width=0.75)
    train_a_little(plan.network)
    path = save_checkpoint(plan.network, tmp_path / "checkpoint.pt", epoch=3)
    network, data = load_checkpoint(path)
    assert data["epoch"] == 3
    x = torch.randn(2, 3, 32, 32)
    plan.network.eval(), network.eval()
    with torch.no_grad():
        torch.testing.assert_close(network(x), plan.network(x), rtol=0, atol=0)
    assert network.last_projection.sizes == plan.network.last_projection.sizes


@pytest.mark.slow
def test_cli_export_from_checkpoint_and_frozen(cli, tmp_path):
    plan = autosc.plan("resnet18_cifar", budget="15%", width=0.5)
    train_a_little(plan.network)
    ckpt = save_checkpoint(plan.network, tmp_path / "checkpoint.pt")
    result = cli("export", ckpt, "-o", tmp_path / "a.onnx", "--json")
    assert result.code == 0, result.err
    data = result.json()
    assert data["opset"] == 18 and data["exporter"] == "dynamo" and data["resize_nodes"] >= 3
    frozen, spec = freeze(plan.network)
    save_frozen(frozen, spec, tmp_path / "frozen.pt")
    assert cli("export", tmp_path / "frozen.pt", "-o", tmp_path / "b.onnx").code == 0
    bench = cli(
        "bench",
        tmp_path / "a.onnx",
        "--vs",
        tmp_path / "b.onnx",
        "--threads",
        "1",
        "--runs",
        "5",
        "--warmup",
        "1",
        "--json",
    )
    assert bench.code == 0, bench.err
    assert len(bench.json()["results"]) == 2


def test_unsafe_or_corrupt_files_are_refused(cli, tmp_path):
    pickled = tmp_path / "pickled.pt"
    torch.save(torch.nn.Linear(2, 2), pickled)  # a whole pickled module: opening it would run code
    assert_one_line_error(cli("export", pickled, "-o", tmp_path / "x.onnx"), "cannot read")
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint")
    assert_one_line_error(cli("export", garbage, "-o", tmp_path / "x.onnx"), "cannot read")
    assert_one_line_error(cli("export", tmp_path / "missing.pt"), "does not exist")
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(2)}, other)
    assert_one_line_error(cli("export", other), "not an autosc file")
    (tmp_path / "bad.onnx").write_bytes(b"\x00\x01junk")
    assert_one_line_error(cli("bench", tmp_path / "bad.onnx", "--runs", "2"), "cannot read ONNX file")
    assert_one_line_error(cli("bench", tmp_path / "none.onnx"), "cannot read ONNX file")
    assert not list(tmp_path.glob("x.onnx*"))


def test_user_network_from_file_plans_freezes_and_exports(tmp_path):
    """A user's own (non-Sequential) network: probe placement, budget, freeze and ONNX all work."""
    (tmp_path / "tiny.py").write_text(
        "import torch\n"
        "from torch import nn\n"
        "class Block(nn.Module):\n"
        "    def __init__(self, c):\n"
        "        super().__init__()\n"
        "        self.conv = nn.Conv2d(c, c, 3, padding=1, bias=False)\n"
        "        self.bn = nn.BatchNorm2d(c)\n"
        "    def forward(self, x):\n"
        "        return torch.relu(x + self.bn(self.conv(x)))\n"
        "class Tiny(nn.Module):\n"
        "    def __init__(self, width=1.0, num_classes=10, in_channels=3):\n"
        "        super().__init__()\n"
        "        c = max(8, int(16 * width))\n"
        "        self.stem = nn.Conv2d(in_channels, c, 3, padding=1)\n"
        "        self.block1 = Block(c)\n"
        "        self.down = nn.Conv2d(c, 2 * c, 3, stride=2, padding=1)\n"
        "        self.block2 = Block(2 * c)\n"
        "        self.block3 = Block(2 * c)\n"
        "        self.head = nn.Linear(2 * c, num_classes)\n"
        "    def forward(self, x):\n"
        "        x = self.block3(self.block2(self.down(self.block1(self.stem(x)))))\n"
        "        return self.head(x.mean((2, 3)))\n"
        "def build(**kwargs):\n"
        "    return Tiny(**kwargs)\n"
    )
    ref = f"{tmp_path}/tiny.py:build"
    widened_macs, _ = human_cost(ModelSpec(ref, 1.0), (32, 32))
    plan = autosc.plan(ref, budget=int(0.7 * widened_macs), width=1.0, input_size=32, adaptors=2)
    assert plan.cells == ["stem", "block2"]  # block3 is the last conv cell; "down" resizes
    train_a_little(plan.network)
    frozen, spec = freeze(plan.network)
    assert count(frozen, (32, 32), cells=False).total_macs <= plan.budget.macs
    result = export_onnx(frozen, (32, 32), tmp_path / "tiny.onnx", exporter="torchscript", opset=17)
    assert result.resize_nodes >= 2


@pytest.mark.slow
def test_collapse_keeps_the_shape_and_drops_the_second_branch():
    from autosc.freeze import SingleBranchAdaptor, collapse

    plan = autosc.plan("resnet18_cifar", budget="40%", width=0.75)
    train_a_little(plan.network)
    frozen, spec = freeze(plan.network)
    collapsed = collapse(frozen)
    singles = [m for m in collapsed.modules() if isinstance(m, SingleBranchAdaptor)]
    assert [m.size for m in singles] == [tuple(a["size"]) for a in spec["adaptors"]]
    assert [m.low for m in singles] == [a["sigma"] < 0.5 for a in spec["adaptors"]]
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert collapsed(x).shape == frozen(x).shape
    full, single = count(frozen, (32, 32), cells=False), count(collapsed, (32, 32), cells=False)
    assert single.macs == full.macs  # same convolutions at the same sizes
    assert single.resize_macs < full.resize_macs and single.activation_bytes < full.activation_bytes
    assert not any(isinstance(m, FrozenAdaptor) for m in collapsed.modules())


def test_load_frozen_uses_the_instance_given_and_refuses_another_network(tmp_path):
    """``load_frozen(run, model=instance)`` applies the learned shape to that instance; an instance of another
    network is one line naming what differs, not an internal error from deep inside the rebuild."""
    from autosc.models import build_model

    plan = autosc.plan("mobilenet_v2_cifar", budget="8M", width=0.35)
    frozen, spec = freeze(plan.network)
    path = save_frozen(frozen, spec, tmp_path / "frozen.pt")
    mine = build_model("mobilenet_v2_cifar", width=0.35)
    mine.made_by = "the caller"  # deep-copied with the instance: shows which network was rebuilt
    net = autosc.load_frozen(path, model=mine)
    assert getattr(net, "made_by", None) == "the caller"
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(net(x), autosc.load_frozen(path)(x), rtol=0, atol=0)
    for other, fragment in [
        (build_model("resnet18_cifar"), "it has no cell features."),  # the learned shape names cells it lacks
        (build_model("mobilenet_v2_cifar", width=1.0), "the network has"),  # same cells, other shapes
    ]:
        with pytest.raises(autosc.AutoscError, match="is not the network stored in") as caught:
            autosc.load_frozen(path, model=other)
        assert fragment in str(caught.value) and "\n" not in str(caught.value)
