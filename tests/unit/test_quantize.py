"""INT8 export (autosc/export/quantize.py; issue 31): ONNX Runtime's static QDQ quantization of a network trained
on images it learns (the synthetic source: colours and patterns, not noise), so agreement with the float model
means something; calibration seeded and reproducible; bad options one line."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from autosc import AutoscError, build_model
from autosc.data import load_data
from autosc.export import export_onnx
from autosc.export.quantize import (
    calibration_sample,
    check_quantize,
    float_ops,
    onnx_accuracy,
    quantize_int8,
)

SIZE = (16, 16)
#: INT8 may lose this much top-1 against the float model on the images it was trained on (issue 31: a stated
#: tolerance; RESULTS measures the loss on held-out data).
TOLERANCE = 0.05

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_thread")]  # trains, exports and quantizes


def _images(size: tuple[int, int] = SIZE) -> tuple[torch.Tensor, torch.Tensor]:
    bundle = load_data("synthetic", input_size=size, seed=0, augment=False)
    items = [bundle.train[i] for i in range(len(bundle.train))]
    return torch.stack([x for x, _ in items]), torch.as_tensor([int(y) for _, y in items])


def _user_net() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.Conv2d(16, 32, 3, stride=2, padding=1),
        nn.BatchNorm2d(32), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10),
    )  # fmt: skip


def _trained(net: nn.Module, x: torch.Tensor, y: torch.Tensor, epochs: int = 6) -> nn.Module:
    torch.manual_seed(0)
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    net.train()
    for _ in range(epochs):
        for i in torch.randperm(len(x)).split(32):
            opt.zero_grad()
            F.cross_entropy(net(x[i]), y[i]).backward()
            opt.step()
    return net.eval()


def _torch_accuracy(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return float((net(x).argmax(1) == y).float().mean())


@pytest.mark.parametrize(
    ("name", "size"),
    [("mobilenet_v2_cifar", SIZE), ("resnet18_cifar", SIZE), ("vgg16_bn_cifar", (32, 32)), ("user", SIZE)],
)  # vgg16_bn halves its maps five times: 32 px at least
def test_int8_keeps_the_float_models_accuracy_on_what_it_learned(tmp_path, name, size):
    x, y = _images(size)
    net = _user_net() if name == "user" else build_model(name, width=0.25, num_classes=10, in_channels=3)
    net = _trained(net, x, y)
    float_acc = _torch_accuracy(net, x, y)
    assert float_acc > 0.5  # it learned: the comparison is not of chance-level outputs
    export_onnx(net, size, tmp_path / "model.onnx", exporter="torchscript")
    result = quantize_int8(tmp_path / "model.onnx", tmp_path / "model.int8.onnx", calibration_sample(x, 128, seed=0))
    assert result.calibration_images == 128 and result.path.is_file()
    acc = onnx_accuracy({"float": tmp_path / "model.onnx", "int8": result.path}, [(x[:100], y[:100]), (x[100:], y[100:])])
    assert acc["float"] == pytest.approx(float_acc, abs=0.01)
    int8_acc = acc["int8"]
    assert int8_acc >= float_acc - TOLERANCE, (name, float_acc, int8_acc)
    assert "Conv" not in result.float_ops  # every convolution runs on dequantized int8 inputs


def test_calibration_is_seeded_and_the_int8_file_reproducible(tmp_path):
    x, y = _images()
    net = _trained(_user_net(), x, y, epochs=1)
    export_onnx(net, SIZE, tmp_path / "model.onnx", exporter="torchscript")
    assert torch.equal(calibration_sample(x, 64, seed=3), calibration_sample(x, 64, seed=3))
    assert not torch.equal(calibration_sample(x, 64, seed=3), calibration_sample(x, 64, seed=4))
    a = quantize_int8(tmp_path / "model.onnx", tmp_path / "a.onnx", calibration_sample(x, 64, seed=3))
    b = quantize_int8(tmp_path / "model.onnx", tmp_path / "b.onnx", calibration_sample(x, 64, seed=3))
    assert a.path.read_bytes() == b.path.read_bytes()
    assert float_ops(a.path) == a.float_ops


def test_bad_quantize_input_is_one_line(tmp_path):
    with pytest.raises(AutoscError, match="--quantize must be one of none, int8, got 'int4'"):
        check_quantize("int4")
    with pytest.raises(AutoscError, match="--calibration-images must be 1 or more"):
        calibration_sample(torch.zeros(4, 3, *SIZE), 0, seed=0)
    (tmp_path / "m.onnx").write_bytes(b"not onnx")
    with pytest.raises(AutoscError, match="m.onnx"):
        quantize_int8(tmp_path / "m.onnx", tmp_path / "q.onnx", torch.zeros(4, 3, *SIZE))
    with pytest.raises(AutoscError, match="is the float file being quantized"):
        quantize_int8(tmp_path / "m.onnx", tmp_path / "m.onnx", torch.zeros(4, 3, *SIZE))
    assert not (tmp_path / "q.onnx").exists()


def test_the_resizes_of_a_learned_shape_are_fed_int8_and_shape_arithmetic_is_not_float(tmp_path):
    """A frozen autosc network keeps a Resize per adaptor that moved; after quantization every Resize (and every
    other compute node) takes dequantized int8 inputs: none is left computing in float. The int64 size arithmetic
    in front of a Resize is not counted as float."""
    import autosc
    from autosc.freeze import freeze

    plan = autosc.plan("mobilenet_v2_cifar", budget="50%", input_size=(32, 32), num_classes=10, in_channels=3)
    frozen, _ = freeze(plan.network)
    export_onnx(frozen.eval(), (32, 32), tmp_path / "m.onnx", exporter="torchscript")
    assert float_ops(tmp_path / "m.onnx")["Resize"] >= 1 and "Shape" in float_ops(tmp_path / "m.onnx")
    result = quantize_int8(tmp_path / "m.onnx", tmp_path / "q.onnx", torch.randn(32, 3, 32, 32))
    assert result.float_ops == {}
