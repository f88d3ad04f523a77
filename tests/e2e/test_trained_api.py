"""Compressing a trained network end to end: a module instance on Datasets from Python, and --weights on the CLI."""

import json

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

import autosc
from autosc.errors import AutoscError
from autosc.models import build_model

from ..conftest import QUICK_EXPORT, TINY_DATA, assert_one_line_error

pytestmark = pytest.mark.slow


class TinyNet(nn.Module):
    """A user's own network, defined here: autosc knows nothing of it but what it can trace."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU())
        self.body = nn.Sequential(nn.Conv2d(16, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU())
        self.down = nn.Sequential(nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.BatchNorm2d(32), nn.ReLU())
        self.head = nn.Linear(32, 3)

    def forward(self, x):
        return self.head(self.down(self.body(self.stem(x))).mean((2, 3)))


class Corners(Dataset):
    """Which corner of a 24x24 image holds a bright square (3 classes), with noise: learnable in a few steps."""

    def __init__(self, n: int, seed: int) -> None:
        g = torch.Generator().manual_seed(seed)
        self.labels = torch.randint(0, 3, (n,), generator=g)
        self.images = torch.randn(n, 1, 24, 24, generator=g) * 0.3
        for i, c in enumerate(self.labels.tolist()):
            r, s = [(0, 0), (0, 14), (14, 7)][c]
            self.images[i, 0, r : r + 10, s : s + 10] += 1.5

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i):
        return self.images[i], int(self.labels[i])


def test_compress_a_module_instance_on_python_datasets_and_load_it_back(tmp_path):
    torch.manual_seed(0)
    net = TinyNet()
    result = autosc.compress(
        net,
        train_data=Corners(192, seed=1),
        test_data=DataLoader(Corners(96, seed=2), batch_size=32),
        budget="60%",
        epochs=2,
        batch_size=32,
        out=tmp_path / "run",
        quiet=True,
        latency_runs=5,
        exporter="torchscript",
    )
    report = result.report
    assert report.data == "python" and report.input_size == [24, 24]
    assert report.accuracy.human is not None and report.start["weights"] == "the module instance"
    # a fresh instance (near chance, 1/3) is trained with the from-scratch recipe, a trained one fine-tuned
    assert report.start["fine_tuned"] == (report.accuracy.human_val >= 1.5 / 3)
    assert report.train["lr"] == pytest.approx(0.1 if not report.start["fine_tuned"] else 0.01)
    assert report.macs.final_total <= report.budget["macs"]
    assert json.loads((result.run_dir / "report.json").read_text())["accuracy"]["human"] == report.accuracy.human
    # the documented way back: a fresh instance of the class gets the learned shape and the trained weights
    loaded = autosc.load_frozen(result.run_dir, model=TinyNet())
    x = Corners(8, seed=3).images
    with torch.no_grad():
        assert torch.allclose(loaded(x), result.frozen(x), rtol=1e-5, atol=1e-6)
    with pytest.raises(AutoscError, match="module instance"):
        autosc.load_frozen(result.run_dir)


def test_bad_python_data_is_one_clear_error(tmp_path):
    with pytest.raises(AutoscError, match="give both train_data and test_data"):
        autosc.compress(TinyNet(), train_data=Corners(8, 0), budget="60%", out=tmp_path / "a", quiet=True)
    with pytest.raises(AutoscError, match="must yield"):
        autosc.compress(
            TinyNet(), train_data=[(1, 2)], test_data=Corners(8, 0), budget="60%", out=tmp_path / "b", quiet=True
        )
    test = Corners(8, 0)
    test.labels[0] = 7  # a label the training data does not have
    with pytest.raises(AutoscError, match="test_data labels must be 0 .. 2"):
        autosc.compress(
            TinyNet(), train_data=Corners(64, 1), test_data=test, budget="60%", out=tmp_path / "c", quiet=True
        )
    with pytest.raises(AutoscError, match=r"outputs \(1, 3\) for one image; the data has 4 classes"):
        autosc.compress(
            TinyNet(), train_data=Corners(64, 1), test_data=Corners(8, 0), num_classes=4, budget="60%",
            out=tmp_path / "d", quiet=True,
        )  # fmt: skip
    with pytest.raises(AutoscError, match="needs input_size"):
        autosc.compress(TinyNet(), data="synthetic", budget="60%", out=tmp_path / "e", quiet=True)


def test_compress_with_weights_on_the_cli(cli, tmp_path):
    trained = build_model("mobilenet_v2_cifar", width=0.5, num_classes=10, in_channels=3)
    torch.save(trained.state_dict(), tmp_path / "w.pt")
    out = tmp_path / "run"
    result = cli(
        "compress", "mobilenet_v2_cifar", *TINY_DATA, "--budget", "60%", "--weights", tmp_path / "w.pt",
        "--epochs", "1", *QUICK_EXPORT, "--out", out, "--quiet",
    )  # fmt: skip
    assert result.code == 0, result.err
    report = json.loads((out / "report.json").read_text())
    assert report["start"]["trained_width"] == 0.5 and report["width"] == 0.5
    assert report["accuracy"]["human"] is not None and report["accuracy"]["val"] is not None
    assert report["train"]["distill"] in (True, False) and report["train"]["lr"] == pytest.approx(0.01)
    # the planned network's top-1 before a step, kept in run.json when planned and carried to both reports
    before = report["start"]["before"]
    assert before == json.loads((out / "run.json").read_text())["plan_summary"]["before"]
    assert 0 <= before["test"] <= 1 and 0 <= before["val"] <= 1
    assert f"| top-1 before the fine-tune (test) | — | {100 * before['test']:.2f}%" in (out / "report.md").read_text()
    # a resumed run must start from the same trained network: a changed weights file is refused, in one line
    torch.save(build_model("mobilenet_v2_cifar", width=0.5, num_classes=10).state_dict(), tmp_path / "w.pt")
    again = cli("compress", "mobilenet_v2_cifar", "--out", out, "--resume", "--quiet")
    assert_one_line_error(again, "changed since this run started")
