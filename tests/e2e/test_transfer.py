"""`autosc transfer` (AutoTL): a trained network fine-tuned on new data with its resizes learned (issue 18)."""

import json

import pytest
import torch
import torch.nn.functional as F

import autosc
from autosc import count
from autosc.cost.width import human_cost
from autosc.freeze import freeze, load_frozen
from autosc.models import ModelSpec, build_model
from autosc.models.trained import load_start, read_weights

from ..conftest import QUICK_EXPORT, TINY_DATA, assert_one_line_error

SOURCE_CLASSES = 7  # the trained network's own task; the synthetic data has 10 classes


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> str:
    """resnet18_cifar at width 0.25, trained a few steps on another task (7 classes), as a state-dict file."""
    torch.manual_seed(0)
    net = build_model("resnet18_cifar", width=0.25, num_classes=SOURCE_CLASSES)
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(32, 3, 32, 32, generator=g), torch.randint(0, SOURCE_CLASSES, (32,), generator=g)
    for _ in range(4):
        loss = F.cross_entropy(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    path = tmp_path_factory.mktemp("weights") / "source.pt"
    torch.save(net.state_dict(), path)
    return str(path)


def test_new_head_keeps_the_features_and_replaces_the_classifier(trained):
    state = read_weights(trained)
    start = load_start("resnet18_cifar", weights=trained, num_classes=10, new_head=True, seed=3)
    assert start.spec.width == 0.25 and start.spec.num_classes == 10
    assert tuple(start.weights["fc.weight"].shape) == (10, state["fc.weight"].shape[1])
    assert all(torch.equal(v, start.weights[k]) for k, v in state.items() if not k.startswith("fc."))
    again = load_start("resnet18_cifar", weights=trained, num_classes=10, new_head=True, seed=3)
    assert torch.equal(again.weights["fc.weight"], start.weights["fc.weight"])  # seeded: reproducible


@pytest.mark.slow
def test_transfer_under_a_budget_is_projected_and_met_after_freezing(trained):
    human_macs, _ = human_cost(ModelSpec("resnet18_cifar", 0.25, 10), (32, 32))
    plan = autosc.plan(
        "resnet18_cifar", weights=trained, num_classes=10, new_head=True, mode="standard", init_factor=0.55,
        budget=int(0.9 * human_macs), input_size=32,
    )  # fmt: skip
    assert plan.network.factors() == pytest.approx([0.55] * 3, abs=1e-6)
    frozen, _ = freeze(plan.network)
    assert count(frozen, (32, 32), cells=False).total_macs <= int(0.9 * human_macs)


def test_transfer_without_a_budget_keeps_the_learned_shape(trained):
    plan = autosc.plan(
        "resnet18_cifar", weights=trained, num_classes=10, new_head=True, mode="standard", init_factor=0.55,
        no_budget=True, input_size=32,
    )  # fmt: skip
    assert not plan.budget.bounded and plan.spec.width == 0.25  # no budget: the trained width, never widened
    # s = 0.55 behind each resize: round(32 * 0.55) = 18, round(32 * 0.55^2) = 10, round(32 * 0.55^3) = 5
    assert plan.projected.sizes == [(18, 18), (10, 10), (5, 5)] and plan.projected.scale == 1.0


@pytest.mark.slow
def test_transfer_writes_the_full_run_folder(cli, trained, tmp_path):
    out = tmp_path / "run"
    # what a transfer run writes, not the exporter: the quicker one (ONNX files and their check are still written)
    result = cli(
        "transfer", "resnet18_cifar", "--weights", trained, *TINY_DATA, "--epochs", "2", *QUICK_EXPORT,
        "--out", out, "--quiet",
    )  # fmt: skip
    assert result.code == 0, result.err
    for name in ("model.onnx", "human.onnx", "frozen.pt", "frozen.shape.json", "checkpoint.pt", "metrics.jsonl",
                 "report.json", "report.md", "shape.png", "dynamics.png", "run.json"):  # fmt: skip
        assert (out / name).is_file(), name
    report = json.loads((out / "report.json").read_text())
    assert report["budget"]["macs"] is None and report["budget"]["free"] is True
    assert [a["kind"] for a in report["adaptors"]] == ["standard"] * 3
    assert [a["human_size"] for a in report["adaptors"]] == [[16, 16], [8, 8], [4, 4]]  # the human network's
    assert all(a["s_start"] == pytest.approx(0.55, abs=1e-6) for a in report["adaptors"])
    assert report["onnx"]["max_abs_diff"] < 1e-3 and report["start"]["weights"] == trained
    assert report["command"].startswith("autosc transfer resnet18_cifar")
    # the frozen network loads back alone and computes what the export was checked against
    frozen, spec = load_frozen(out / "frozen.pt")
    assert [tuple(a["size"]) for a in spec["adaptors"]] == [tuple(a["size"]) for a in report["adaptors"]]
    assert count(frozen, (32, 32), cells=False).total_macs == report["macs"]["final_total"]
    md = (out / "report.md").read_text()
    assert "its human resize (cell at stride 1)" in md and "autosc transfer" in md
    # a finished run folder is not overwritten
    assert_one_line_error(
        cli("transfer", "resnet18_cifar", "--weights", trained, "--data", "synthetic", "--out", out),
        "already holds a run",
    )


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        ([], "transfer starts from a trained network: give --weights FILE"),
        (["--weights", "WEIGHTS", "--init-factor", "0.4"], "--init-factor must be in (0.5, 1)"),
        (["--weights", "WEIGHTS", "--mode", "nowhere"], "--mode must be one of autosc, standard, both"),
        (["--weights", "WEIGHTS", "--budget", "5M", "--no-budget"], "--no-budget trains without a budget"),
    ],
)
def test_bad_transfer_input_is_one_line(cli, trained, tmp_path, args, fragment):
    args = [trained if a == "WEIGHTS" else a for a in args]
    result = cli("transfer", "resnet18_cifar", "--data", "synthetic", "--out", tmp_path / "r", *args)
    assert_one_line_error(result, fragment)
