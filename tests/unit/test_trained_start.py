"""A trained start (docs/algorithm.md, Compressing a trained network): weights read, function kept, widening, errors."""

import pytest
import torch
from torch import nn

import autosc
from autosc.cost import count
from autosc.data import load_data
from autosc.errors import AutoscError
from autosc.models import build_model
from autosc.models.trained import read_weights
from autosc.models.widen import widen
from autosc.train.evaluate import evaluate

from ..conftest import assert_one_line_error
from ..helpers import sgd_a_little


def _trained_a_little(net: nn.Module, channels: int, size: int = 32, steps: int = 3, seed: int = 0) -> nn.Module:
    """A few SGD steps on random data: weights and BatchNorm statistics move away from their initial values."""
    g = torch.Generator().manual_seed(seed)
    x, _ = sgd_a_little(net, channels, size, steps, generator=g)
    norms = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    with torch.no_grad():  # BatchNorm as after real training: scales and shifts moved, statistics of the data
        for m in norms:
            m.weight.uniform_(0.5, 1.5, generator=g)
            m.bias.normal_(0, 0.1, generator=g)
            m.reset_running_stats()
            m.momentum = None  # a cumulative average over the calibration passes
        net.train()
        for _ in range(2):
            net(x)
        for m in norms:
            m.momentum = 0.1
        logits = net.eval()(x)
    assert float(logits.std(0).mean()) > 0.05 * float(logits.abs().mean())  # the output depends on the input
    return net


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max())


@pytest.mark.parametrize(
    "name", ["mobilenet_v2_cifar", "resnet18_cifar", "resnet50_cifar", "vgg16_bn_cifar", "timm:efficientnet_b0"]
)
@pytest.mark.slow
def test_widening_keeps_the_trained_function(name):
    """Residual joins (ResNet, MobileNetV2), depthwise groups, a flattening head (VGG), squeeze-excite (timm)."""
    if name.startswith("timm:"):
        pytest.importorskip("timm")
    torch.manual_seed(0)
    # ResNet-50 trains on 16 px (its bottlenecks still see 2x2 maps; a quarter of the 6 s at 32 px); VGG's five
    # halvings need 32 px
    size = 16 if name == "resnet50_cifar" else 32
    narrow = _trained_a_little(build_model(name, width=1.0, num_classes=10, in_channels=1), 1, size=size)
    wide = widen(narrow, build_model(name, width=1.5, num_classes=10, in_channels=1), in_channels=1, noise=0.1)
    assert sum(p.numel() for p in wide.parameters()) > 1.8 * sum(p.numel() for p in narrow.parameters())
    x = torch.randn(8, 1, size, size)
    with torch.no_grad():
        assert _rel(wide.eval()(x), narrow(x)) < 1e-5


@pytest.mark.slow
def test_widening_breaks_the_symmetry_of_copies_only_with_noise():
    """A copied channel's consumers weigh it and its original unevenly with noise (so their gradients differ), and
    equally without."""
    narrow = _trained_a_little(build_model("resnet18_cifar", num_classes=10), 3)
    for noise, distinct in ((0.0, False), (0.1, True)):
        wide = widen(narrow, build_model("resnet18_cifar", width=1.5, num_classes=10), noise=noise)
        producer, consumer = wide.layer1[0].conv1.weight, wide.layer1[0].conv2.weight  # 96 channels from 64
        for copy in range(64, 96):
            original = next(j for j in range(64) if torch.equal(producer[copy], producer[j]))
            same = torch.allclose(consumer[:, copy], consumer[:, original], rtol=0, atol=1e-7)
            assert same != distinct, (noise, copy, original)


def test_widening_refuses_grouped_convolutions():
    class Grouped(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.a = nn.Conv2d(3, c, 3, padding=1)
            self.b = nn.Conv2d(c, c, 3, padding=1, groups=4)
            self.fc = nn.Linear(c, 10)

        def forward(self, x):
            return self.fc(self.b(self.a(x)).mean((2, 3)))

    with pytest.raises(AutoscError, match="grouped convolution"):
        widen(Grouped(8), Grouped(16))


def _save(net: nn.Module, path, how: str = "plain"):
    state = net.state_dict()
    torch.save({"plain": state, "checkpoint": {"epoch": 3, "state_dict": state}, "model": {"model": state}}[how], path)
    return path


@pytest.mark.parametrize("how", ["plain", "checkpoint", "model"])
def test_weights_files_are_read_as_state_dicts(tmp_path, how):
    net = build_model("mobilenet_v2_cifar", num_classes=10, in_channels=1)
    state = read_weights(_save(net, tmp_path / "w.pt", how))
    assert state.keys() == net.state_dict().keys()


def _identity_logits(plan, x):
    for adaptor in plan.network.adaptors():
        adaptor.size = adaptor.human_size
    with torch.no_grad():
        return plan.network.net.eval()(x)


@pytest.mark.slow
def test_adapted_network_computes_the_trained_network_at_the_start(tmp_path):
    """With identity adaptors (straight-through mix, the default for a trained start) the logits are the trained ones,
    at the trained width and widened; the width is read off the file."""
    trained = _trained_a_little(build_model("mobilenet_v2_cifar", width=0.75, num_classes=10, in_channels=1), 1)
    path = _save(trained, tmp_path / "w.pt")
    x = torch.randn(8, 1, 32, 32)
    with torch.no_grad():
        ref = trained(x)
    for width in ("auto", 1.5):
        plan = autosc.plan(
            "mobilenet_v2_cifar",
            budget="50%",
            input_size=32,
            num_classes=10,
            in_channels=1,
            weights=str(path),
            width=width,
        )
        assert plan.start.spec.width == 0.75 and plan.to_dict()["trained_width"] == 0.75
        assert plan.spec.width == (0.75 if width == "auto" else 1.5)
        assert plan.human_macs == count(trained, (32, 32), cells=False).macs  # "human" is the trained network
        assert _rel(_identity_logits(plan, x), ref) < 1e-5
    # the seed paper's blend is not the identity at the start: the half-resolution branch is mixed in
    # (at the trained width, which "auto" chose above: given, no width search of the file)
    blend = autosc.plan(
        "mobilenet_v2_cifar", budget="50%", input_size=32, num_classes=10, in_channels=1, weights=str(path),
        width=0.75, adaptor_mix="blend",
    )  # fmt: skip
    assert _rel(_identity_logits(blend, x), ref) > 1e-4


def test_adapted_module_instance_computes_the_instance(tmp_path):
    class Small(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU())
            self.body = nn.Sequential(nn.Conv2d(16, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU())
            self.down = nn.Sequential(nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.ReLU())
            self.fc = nn.Linear(32, 10)

        def forward(self, x):
            return self.fc(self.down(self.body(self.stem(x))).mean((2, 3)))

    net = _trained_a_little(Small(), 1)
    x = torch.randn(8, 1, 32, 32)
    with torch.no_grad():
        ref = net(x)
    plan = autosc.plan(net, budget="60%", input_size=32, num_classes=10, in_channels=1)
    assert plan.start.trained and plan.width_note and "keeps the trained width 1" in plan.width_note
    assert _rel(_identity_logits(plan, x), ref) < 1e-5
    with pytest.raises(AutoscError, match="widen"):
        autosc.plan(net, budget="60%", input_size=32, num_classes=10, in_channels=1, width=1.5)


@pytest.mark.slow
def test_widened_network_keeps_the_trained_accuracy():
    """A network trained for real (synthetic data, a few epochs) scores the same widened, before any step."""
    from autosc.run.stages import train_network
    from autosc.train import TrainConfig

    bundle = load_data("synthetic", input_size=(16, 16), seed=0)  # 16 px: the colours are learned as at 32 px
    torch.manual_seed(0)
    narrow = build_model("resnet18_cifar", width=0.25, num_classes=bundle.num_classes, in_channels=bundle.channels)
    config = TrainConfig(epochs=2, batch_size=32, lr=0.05, weight_decay=4e-5, device="cpu")
    train_network(narrow, bundle, config)
    _, acc = evaluate(narrow, bundle.test, device="cpu")
    assert acc > 0.3  # it learned something: equal accuracy is not the trivial 10% of a constant network
    wide = widen(
        narrow,
        build_model("resnet18_cifar", width=0.5, num_classes=bundle.num_classes, in_channels=bundle.channels),
        noise=0.1,
    )
    _, wide_acc = evaluate(wide, bundle.test, device="cpu")
    assert abs(wide_acc - acc) <= 0.001


def test_width_rules_for_a_trained_start(tmp_path):
    path = str(_save(build_model("resnet18_cifar", width=1.0, num_classes=10), tmp_path / "w.pt"))
    with pytest.raises(AutoscError, match="below the trained network's width 1"):
        autosc.plan("resnet18_cifar", budget="50%", num_classes=10, weights=path, width=0.5)


@pytest.mark.slow
def test_mismatched_weights_are_one_line(cli, tmp_path):
    """Weights of the family for other data. (Another network's weights: the test below, which checks that line.)"""
    path = _save(build_model("mobilenet_v2_cifar", num_classes=100, in_channels=1), tmp_path / "w.pt")
    result = cli(
        "plan", "mobilenet_v2_cifar", "--budget", "50%", "--num-classes", "10", "--in-channels", "1", "--weights", path
    )
    assert_one_line_error(
        result, "classifier.1.weight is (100, 1280)", "fits 100 classes and 1 input channels at width 1"
    )


def test_unreadable_weights_are_one_line(cli, tmp_path):
    (tmp_path / "junk.pt").write_bytes(b"not a torch file")
    torch.save({"epoch": 3}, tmp_path / "nostate.pt")
    assert_one_line_error(
        cli("plan", "mobilenet_v2_cifar", "--budget", "50%", "--weights", tmp_path / "junk.pt"), "cannot read"
    )
    assert_one_line_error(
        cli("plan", "mobilenet_v2_cifar", "--budget", "50%", "--weights", tmp_path / "nostate.pt"),
        "holds no state dict",
    )
    assert_one_line_error(
        cli("plan", "mobilenet_v2_cifar", "--budget", "50%", "--weights", tmp_path / "no.pt"), "does not exist"
    )


@pytest.mark.slow
def test_plan_cli_reports_the_trained_width(cli, tmp_path):
    path = _save(build_model("mobilenet_v2_cifar", width=0.5, num_classes=10, in_channels=1), tmp_path / "w.pt")
    result = cli(
        "plan", "mobilenet_v2_cifar", "--budget", "50%", "--num-classes", "10", "--in-channels", "1",
        "--weights", path, "--width", "1", "--json",
    )  # fmt: skip
    assert result.code == 0, result.err
    data = result.json()
    assert data["trained_width"] == 0.5 and data["width"] == 1.0 and data["mix"] == "straight-through"


class NotAWeight:
    """A Python object in a weights file: what weights_only=True refuses to unpickle."""


def test_weights_file_messages_say_what_is_wrong_in_plain_words(cli, tmp_path):
    """A folder, a file of pickled objects, a file of another network under --new-head: one clean line each."""
    plan = ("plan", "mobilenet_v2_cifar", "--budget", "50%")
    assert_one_line_error(cli(*plan, "--weights", tmp_path), f"--weights {tmp_path} is a folder")
    torch.save({"features.0.0.weight": torch.zeros(2), "extra": NotAWeight()}, tmp_path / "objects.pt")
    result = cli(*plan, "--weights", tmp_path / "objects.pt")
    assert_one_line_error(result, "holds Python objects other than tensors", "NotAWeight", "reads only weights")
    assert "weights_only" not in result.err and "\x1b" not in result.err
    _save(build_model("resnet18_cifar", num_classes=7), tmp_path / "resnet.pt")
    result = cli(*plan, "--new-head", "--weights", tmp_path / "resnet.pt")
    assert_one_line_error(result, "holds no 2-D classifier.1.weight: is it a state dict of mobilenet_v2_cifar?")


def test_weights_of_another_network_name_the_classes_the_family_has(cli, tmp_path):
    """Without --num-classes the message says the family's own classes, never "None classes"; it names what is
    missing (one refusal checks both)."""
    path = _save(build_model("resnet18_cifar", num_classes=10), tmp_path / "w.pt")
    result = cli("plan", "mobilenet_v2_cifar", "--budget", "50%", "--weights", path)
    assert_one_line_error(result, "does not fit mobilenet_v2_cifar (10 classes, 3 input channels)", "missing")
    assert "None" not in result.err


def test_a_file_of_other_layer_names_is_refused_without_trying_every_width(tmp_path, monkeypatch):
    """A zoo family's layer names do not depend on its width: another family's file is refused after one look,
    not after building each of the 159 widths of the grid (which took 20 s)."""
    from autosc.models import ModelSpec, trained

    calls = []
    real = trained._fits
    monkeypatch.setattr(trained, "_fits", lambda spec, state: calls.append(spec.width) or real(spec, state))
    state = build_model("resnet18_cifar", num_classes=10).state_dict()
    with pytest.raises(AutoscError, match="does not fit mobilenet_v2_cifar"):
        trained.trained_width(ModelSpec("mobilenet_v2_cifar", 1.0, 10, 3), state, "w.pt")
    assert len(calls) <= 3  # the asked width, width 1 and the hint's look
    calls.clear()  # a file of the same family at another width is still found on the grid
    state = build_model("mobilenet_v2_cifar", num_classes=10, width=0.5).state_dict()
    assert trained.trained_width(ModelSpec("mobilenet_v2_cifar", 1.0, 10, 3), state, "w.pt") == 0.5
    assert len(calls) > 3


@pytest.mark.parametrize("dtype", [torch.int64, torch.complex64, torch.bool])
def test_non_floating_weights_are_refused_but_batchnorm_counters_pass(tmp_path, dtype):
    """Integer or complex values where the network has float weights would be cast without a word."""
    from autosc import io
    from autosc.models.trained import load_start

    net = build_model("mobilenet_v2_cifar", num_classes=10)
    state = net.state_dict()
    assert state["features.0.1.num_batches_tracked"].dtype == torch.int64  # every BatchNorm's own counter
    torch.save(state, tmp_path / "ok.pt")
    assert load_start("mobilenet_v2_cifar", weights=tmp_path / "ok.pt", num_classes=10).weights is not None
    bad = {**state, "classifier.1.weight": state["classifier.1.weight"].to(dtype)}
    torch.save(bad, tmp_path / "bad.pt")
    name = str(dtype).removeprefix("torch.")
    with pytest.raises(AutoscError, match=f"classifier.1.weight holds {name} values where the network has float"):
        load_start("mobilenet_v2_cifar", weights=tmp_path / "bad.pt", num_classes=10)
    with pytest.raises(AutoscError, match=f"holds {name} values"):  # a module instance given with --weights
        load_start(build_model("mobilenet_v2_cifar", num_classes=10), weights=tmp_path / "bad.pt", num_classes=10)
    with pytest.raises(AutoscError, match=f"frozen.pt: classifier.1.weight holds {name} values"):  # a frozen file
        io.load_state(net, bad, "frozen.pt")
