"""ONNX export (parity, constant-size resizes, atomic write) and the latency bench, on small nets."""

import json
import os

import numpy as np
import onnx
import pytest
import torch
import torch.nn.functional as F
from rich.console import Console
from torch import nn

from autosc.errors import AutoscError
from autosc.export import check_parity, export_onnx, load_onnx, resize_nodes
from autosc.latency import bench, bench_table


def conv_bn(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU())


class FrozenAdaptorNet(nn.Module):
    """conv-BN-ReLU, a frozen shape adaptor (constant int size, constant sigma), convs, pool, linear."""

    def __init__(self, size: tuple[int, int], sigma: float = 0.37, width: int = 8, classes: int = 10) -> None:
        super().__init__()
        self.size, self.sigma = size, sigma
        self.stem = conv_bn(3, width)
        self.body = nn.Sequential(conv_bn(width, 2 * width), conv_bn(2 * width, 2 * width))
        self.fc = nn.Linear(2 * width, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        h, w = self.size
        s = self.sigma
        pooled = F.max_pool2d(x, 2, 2, ceil_mode=True)
        x = (1 - s) * F.interpolate(pooled, size=(h, w), mode="bilinear", align_corners=False) + s * F.interpolate(
            x, size=(h, w), mode="bilinear", align_corners=False
        )
        x = self.body(x)
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class ScaleFactorNet(nn.Module):
    """Resizes with scale_factor: the export must refuse it (ONNX Resize with scales)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = conv_bn(3, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(self.conv(x), scale_factor=0.5, mode="bilinear", align_corners=False)
        return x.mean((2, 3))


class DataDependentNet(nn.Module):
    """Runs eagerly but cannot be captured by torch.export (branch on a tensor value)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x).mean((2, 3))
        return x if x.sum() > 0 else -x


def trained(input_size: tuple[int, int], size: tuple[int, int], seed: int = 0, steps: int = 5) -> nn.Module:
    """A few real SGD steps in train mode so BN statistics and weights move away from their init."""
    torch.manual_seed(seed)
    model = FrozenAdaptorNet(size)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model.train()
    for _ in range(steps):
        x = torch.randn(8, 3, *input_size)
        y = torch.randint(0, 10, (8,))
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """One trained 32x32 net exported with the dynamo exporter (shared: exporting takes seconds)."""
    folder = tmp_path_factory.mktemp("onnx")
    model = trained((32, 32), (13, 11))
    result = export_onnx(model, (32, 32), folder / "net.onnx", opset=18, exporter="dynamo")
    return model, result


@pytest.mark.slow
def test_trained_logits_are_not_trivial(exported):
    model, _ = exported
    with torch.no_grad():
        logits = model(torch.randn(16, 3, 32, 32, generator=torch.Generator().manual_seed(1)))
    assert logits.std().item() > 0.05


@pytest.mark.slow
def test_export_parity_and_result(exported):
    model, result = exported
    assert os.path.isfile(result.path)
    assert (result.opset, result.exporter, result.resize_nodes) == (18, "dynamo", 2)
    assert result.max_abs_diff is not None and result.max_abs_diff < 1e-4
    json.dumps(result.to_dict())
    # Both ORT optimisation levels, at a batch other than the traced one, tight tolerances.
    abs_d, rel_d = check_parity(model, result.path, (32, 32), batch=4, rtol=1e-3, atol=1e-4, seed=3)
    assert abs_d < 1e-4 and rel_d < 1e-2


@pytest.mark.slow
def test_export_graph_has_constant_size_resizes(exported):
    _, result = exported
    model = onnx.load(result.path)
    onnx.checker.check_model(model, full_check=True)
    nodes = resize_nodes(model)
    assert len(nodes) == 2
    for node in nodes:
        assert node["uses"] == "sizes"
        assert node["spatial_size"] == [13, 11]
        assert node["mode"] == "linear" and node["coordinate_transformation_mode"] == "half_pixel"
    for node in model.graph.node:
        if node.op_type == "Resize":
            assert node.input[2] == "", "Resize must not use scales"
    assert {"MaxPool", "Resize"} <= {n.op_type for n in model.graph.node}
    # Self-contained file, batch dynamic, spatial dims static.
    assert not [t.name for t in model.graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL]
    dims = model.graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param and [d.dim_value for d in dims[1:]] == [3, 32, 32]


@pytest.mark.slow
def test_export_non_square_static_batch(tmp_path):
    model = trained((48, 40), (20, 17), seed=1, steps=3)
    result = export_onnx(model, (48, 40), tmp_path / "wide.onnx", dynamic_batch=False)
    graph = load_onnx(result.path)
    assert [n["spatial_size"] for n in resize_nodes(graph)] == [[20, 17], [20, 17]]
    assert all(n["sizes_constant"] for n in resize_nodes(graph))
    assert [d.dim_value for d in graph.graph.input[0].type.tensor_type.shape.dim] == [1, 3, 48, 40]
    assert result.max_abs_diff < 1e-4


def test_torchscript_exporter(tmp_path):
    model = trained((32, 32), (13, 11), seed=2, steps=2)
    result = export_onnx(model, (32, 32), tmp_path / "ts.onnx", exporter="torchscript", opset=17)
    assert result.exporter == "torchscript" and result.opset == 17
    assert [n["spatial_size"] for n in resize_nodes(load_onnx(result.path))] == [[13, 11], [13, 11]]


@pytest.mark.slow
def test_export_is_silent(tmp_path, capfd):
    export_onnx(trained((32, 32), (13, 11), steps=1), (32, 32), tmp_path / "quiet.onnx", check=False)
    out, err = capfd.readouterr()
    assert out == "" and err == ""


@pytest.mark.parametrize(
    "model, fragment",
    [
        (DataDependentNet(), "ONNX export failed"),
        (ScaleFactorNet(), "uses scales"),
    ],
    ids=["exporter-fails", "scale-factor"],
)
@pytest.mark.slow
def test_failed_export_leaves_target_untouched(tmp_path, model, fragment):
    target = tmp_path / "net.onnx"
    target.write_bytes(b"previous contents \x00\x01")
    before = sorted(os.listdir(tmp_path))
    with pytest.raises(AutoscError, match=fragment):
        export_onnx(model, (32, 32), target)
    assert target.read_bytes() == b"previous contents \x00\x01"
    assert sorted(os.listdir(tmp_path)) == before


def test_forward_error_is_one_line_and_writes_nothing(tmp_path):
    with pytest.raises(AutoscError, match="cannot run") as info:
        export_onnx(FrozenAdaptorNet((13, 11)), (32, 32), tmp_path / "net.onnx", in_channels=5)
    assert "\n" not in str(info.value)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        ({"opset": 16}, "opset"),
        ({"exporter": "fx"}, "exporter"),
        ({"input_size": (32,)}, "input size"),
    ],
)
def test_export_rejects_bad_arguments(tmp_path, kwargs, fragment):
    args = {"input_size": (32, 32), **kwargs}
    with pytest.raises(AutoscError, match=fragment):
        export_onnx(FrozenAdaptorNet((13, 11)), path=tmp_path / "x.onnx", **args)
    assert os.listdir(tmp_path) == []


def test_load_onnx_rejects_missing_and_corrupt(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"this is not protobuf \xff\xfe")
    empty = tmp_path / "empty.onnx"
    empty.write_bytes(b"")
    for path in (tmp_path / "missing.onnx", bad, empty):
        with pytest.raises(AutoscError, match="cannot read ONNX file") as info:
            load_onnx(path)
        assert "\n" not in str(info.value)


@pytest.mark.slow
def test_bench_two_models(exported, tmp_path):
    _, result = exported
    other = export_onnx(trained((32, 32), (9, 9), seed=3, steps=1), (32, 32), tmp_path / "small.onnx", check=False)
    out = bench(
        [result.path, other.path], labels=["human", "compressed"], threads=[1], batches=[1, 4], runs=20, warmup=2
    )
    rows = out["results"]
    assert len(rows) == 4
    assert [(r["batch"], r["label"]) for r in rows] == [
        (1, "human"),
        (1, "compressed"),
        (4, "human"),
        (4, "compressed"),
    ]
    for r in rows:
        assert r["threads"] == 1
        assert 0 < r["p50"] <= r["p90"] <= r["p99"]
        assert r["mean"] > 0
    for key in ("onnxruntime", "onnx", "torch", "numpy", "python", "cpu_model", "logical_cores"):
        assert out["env"][key]
    assert (out["runs"], out["warmup"]) == (20, 2)
    assert [(m["opset"], m["exporter"]) for m in out["models"]] == [(18, "dynamo"), (18, "dynamo")]
    assert json.loads(json.dumps(out)) == out
    console = Console(record=True, width=120)
    console.print(bench_table(out))
    text = console.export_text()
    assert "p50 / human" in text and "1.00x" in text


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        ({"threads": [0]}, "threads"),
        ({"batches": [0]}, "batches"),
        ({"runs": 0}, "runs"),
        ({"labels": ["a", "b"]}, "labels"),
    ],
)
def test_bench_rejects_bad_settings(tmp_path, kwargs, fragment):
    """The settings are refused before any file is read (a file that does not exist would be the other error)."""
    with pytest.raises(AutoscError, match=fragment):
        bench([tmp_path / "never_read.onnx"], **kwargs)


def test_bench_rejects_missing_and_corrupt_files(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"garbage")
    for path in (str(tmp_path / "missing.onnx"), str(bad)):
        with pytest.raises(AutoscError, match="cannot read ONNX file"):
            bench([path], threads=[1], runs=1, warmup=0)


@pytest.mark.slow
def test_bench_refuses_other_batch_on_static_file(tmp_path):
    model = trained((32, 32), (13, 11), steps=1)
    result = export_onnx(model, (32, 32), tmp_path / "static.onnx", dynamic_batch=False, check=False)
    with pytest.raises(AutoscError, match="fixed batch of 1"):
        bench([result.path], threads=[1], batches=[2], runs=1, warmup=0)
    assert np.isfinite(bench([result.path], threads=[1], runs=2, warmup=0)["results"][0]["p50"])


@pytest.mark.parametrize(
    ("exporter", "size"), [pytest.param("dynamo", (16, 16), marks=pytest.mark.slow), ("torchscript", (16, 32))]
)
def test_exact_half_resizes_export_as_average_pools_with_parity(tmp_path, exporter, size):
    """32x32 -> 16x16 (or 16x32) bilinear is a 2x2 (2x1) average pool; the low branch's 16x16 resize stays."""
    import onnxruntime as ort

    model = trained((32, 32), size, seed=4, steps=3)
    pooled = export_onnx(model, (32, 32), tmp_path / "pooled.onnx", exporter=exporter)  # parity at both ORT levels
    plain = export_onnx(model, (32, 32), tmp_path / "plain.onnx", exporter=exporter, pool_halves=False)
    assert (pooled.pooled_resizes, pooled.resize_nodes) == (1, 1)
    assert (plain.pooled_resizes, plain.resize_nodes) == (0, 2)
    graph = load_onnx(pooled.path)
    pools = [n for n in graph.graph.node if n.op_type == "AveragePool"]
    kernel = [2 if 2 * s == 32 else 1 for s in size]
    assert [
        [list(onnx.helper.get_attribute_value(a)) for a in p.attribute if a.name == "kernel_shape"] for p in pools
    ] == [[kernel]]
    assert pooled.max_abs_diff < 1e-4
    x = np.random.default_rng(5).standard_normal((4, 3, 32, 32), dtype=np.float32)
    got, want = (ort.InferenceSession(r.path).run(None, {"input": x})[0] for r in (pooled, plain))
    with torch.no_grad():
        torch_out = model(torch.from_numpy(x)).numpy()
    assert np.abs(torch_out).max() > 0.05  # trained: not near-zero logits
    assert np.abs(got - want).max() <= 1e-5 * np.abs(want).max()


def test_halving_kernel_only_for_exact_halves():
    from autosc.export.graph import _halving_kernel

    assert _halving_kernel([32, 32], [16, 16], "half_pixel") == [2, 2]
    assert _halving_kernel([32, 30], [16, 30], "pytorch_half_pixel") == [2, 1]
    assert _halving_kernel([32, 32], [32, 32], "half_pixel") is None  # nothing halves: not a pool
    assert _halving_kernel([31, 32], [15, 16], "half_pixel") is None  # odd input: not exactly half
    assert _halving_kernel([2, 4], [1, 2], "pytorch_half_pixel") is None  # length 1 samples pixel 0, not the mean
    assert _halving_kernel([2, 4], [1, 2], "half_pixel") == [2, 2]
    assert _halving_kernel([None, 4], [1, 2], "half_pixel") is None


def test_bench_blocks_time_each_model_warm_in_turn():
    """block=2: each visit runs the model once untimed, then times 2 runs in a row; models take turns."""
    from autosc.latency import _measure

    calls = []

    class Session:
        def __init__(self, name):
            self.name = name

        def run(self, _outputs, _feed):
            calls.append(self.name)

    times = _measure([Session("a"), Session("b")], [{}, {}], runs=5, warmup=1, block=2)
    assert [len(t) for t in times] == [5, 5]
    # warm-up, then visits (rewarm + timed runs); the first model of a round rotates
    assert "".join(calls) == "ab" + "aaa" + "bbb" + "bbb" + "aaa" + "aa" + "bb"
    with pytest.raises(AutoscError, match="block must be an integer >= 1"):
        bench(["x.onnx"], block=0)


@pytest.mark.parametrize("kind", ["fifo", "link", "folder"])
def test_atomic_write_replaces_only_a_regular_file(tmp_path, kind):
    """The rename would put a regular file in the place of anything: a FIFO or device node, a link, a folder."""
    import stat

    from autosc.io import atomic_write

    path, target = tmp_path / "out.onnx", tmp_path / "thesis.tex"
    target.write_text("three years of work")
    {"fifo": os.mkfifo, "link": lambda p: p.symlink_to(target), "folder": os.mkdir}[kind](path)
    mode = os.lstat(path).st_mode
    written = []
    with pytest.raises(AutoscError, match="autosc writes only over regular files"):
        atomic_write(path, written.append)
    assert written == [] and os.lstat(path).st_mode == mode and target.read_text() == "three years of work"
    assert sorted(os.listdir(tmp_path)) == ["out.onnx", "thesis.tex"]
    assert stat.S_IFMT(mode) != stat.S_IFREG


def test_export_onnx_refuses_a_fifo_target(tmp_path):
    fifo = tmp_path / "net.onnx"
    os.mkfifo(fifo)
    with pytest.raises(AutoscError, match="is not a regular file"):
        export_onnx(FrozenAdaptorNet((13, 11)), (32, 32), fifo)
    assert os.listdir(tmp_path) == ["net.onnx"]


class _TwoResizes(torch.nn.Module):
    """32 -> 24 (not a half), then 24 -> 12: the second is an exact half of a map whose size only data propagation
    through the first Resize's computed sizes can tell."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.Conv2d(8, 8, 3, padding=1)
        self.head = torch.nn.Linear(8, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.nn.functional.interpolate(self.a(x), size=(24, 24), mode="bilinear", align_corners=False)
        x = torch.nn.functional.interpolate(self.b(x), size=(12, 12), mode="bilinear", align_corners=False)
        return self.head(x.mean((2, 3)))


def test_an_exact_half_after_another_resize_is_pooled_too(tmp_path):
    result = export_onnx(_TwoResizes().eval(), (32, 32), tmp_path / "m.onnx", exporter="torchscript")  # parity
    assert (result.pooled_resizes, result.resize_nodes) == (1, 1)
