"""Compress runs with a pruning strategy end to end: the CLI with --weights, a module instance from Python, the
frozen network rebuilt from its spec, --resume from the pruned start, and bad strategy input (docs/algorithm.md,
Strategies)."""

import json

import pytest
import torch

import autosc
from autosc.models import build_model

from ..conftest import QUICK_EXPORT, TINY_DATA, assert_one_line_error
from ..helpers import sgd_a_little
from .test_trained_api import Corners, TinyNet

pytestmark = pytest.mark.slow


def _weights(tmp_path):
    torch.manual_seed(0)
    net = build_model("mobilenet_v2_cifar", width=0.5, num_classes=10, in_channels=3)
    sgd_a_little(net, 3)
    torch.save(net.state_dict(), tmp_path / "w.pt")
    return tmp_path / "w.pt"


@pytest.mark.parametrize("strategy", ["prune", "compound"])
def test_a_pruning_strategy_on_the_cli_meets_the_budget_and_loads_back(cli, tmp_path, strategy):
    weights, out = _weights(tmp_path), tmp_path / "run"
    run = ["compress", "mobilenet_v2_cifar", *TINY_DATA, "--budget", "55%", "--weights", weights, "--epochs", "1",
           *QUICK_EXPORT, "--quiet", "--strategy", strategy]  # fmt: skip
    result = cli(*run, "--out", out)
    assert result.code == 0, result.err
    report = json.loads((out / "report.json").read_text())
    assert report["strategy"]["name"] == strategy and report["strategy"]["importance"] == "taylor"
    pruning = report["strategy"]["pruning"]
    assert pruning["macs_after"] < pruning["macs_before"] == report["macs"]["human"]
    assert report["macs"]["final_total"] <= report["budget"]["macs"]  # counted on the frozen network
    if strategy == "prune":
        assert report["macs"]["final_resize"] == 0 and all(a["size"] == a["human_size"] for a in report["adaptors"])
    assert f"Strategy {strategy}: Torch-Pruning removed channels" in (out / "report.md").read_text()
    frozen = autosc.load_frozen(out)  # rebuilt from the spec: the zoo network with the recorded channel counts
    first = torch.load(out / "frozen.pt", weights_only=True)
    assert first["shape_spec"]["model"]["channels"]
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        reference = frozen(x)
    # --resume of the finished run rebuilds it from the pruned start kept in the folder, and exports it again
    again = cli("compress", "mobilenet_v2_cifar", "--out", out, "--resume", "--quiet")
    assert again.code == 0, again.err
    with torch.no_grad():
        torch.testing.assert_close(autosc.load_frozen(out)(x), reference)
    (out / "pruned_start.pt").unlink()
    assert_one_line_error(cli("compress", "mobilenet_v2_cifar", "--out", out, "--resume", "--quiet"),
                          "pruned_start.pt is missing")  # fmt: skip


def test_compound_on_a_module_instance_loads_back_into_a_fresh_instance(tmp_path):
    torch.manual_seed(0)
    net = TinyNet()
    result = autosc.compress(
        net, train_data=Corners(192, seed=1), test_data=Corners(96, seed=2), budget="60%", epochs=2, batch_size=32,
        out=tmp_path / "run", quiet=True, latency_runs=3, exporter="torchscript", strategy="compound",
        prune_share=0.5,
    )  # fmt: skip
    assert result.report.strategy["pruning"]["share"] == 0.5
    assert result.report.macs.final_total <= result.report.budget["macs"]
    loaded = autosc.load_frozen(result.run_dir, model=TinyNet())
    x = Corners(8, seed=3).images
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), result.frozen(x), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    ("flags", "fragment"),
    [
        (["--strategy", "both"], "--strategy must be one of shape, prune, compound, auto, got 'both'"),
        (["--strategy", "prune", "--importance", "l3"], "unknown importance 'l3'"),
        (["--strategy", "compound", "--prune-share", "2"], "--prune-share must be a number from 0 to 1"),
    ],
)
def test_bad_strategy_input_is_one_line_exit_2(cli, tmp_path, flags, fragment):
    result = cli("compress", "mobilenet_v2_cifar", *TINY_DATA, "--budget", "60%", "--epochs", "1", "--quiet",
                 "--out", tmp_path / "run", *flags)  # fmt: skip
    assert_one_line_error(result, fragment)
    assert not (tmp_path / "run" / "run.json").exists()


def test_auto_scores_every_split_on_validation_and_continues_with_the_best(cli, tmp_path):
    weights, out = _weights(tmp_path), tmp_path / "run"
    result = cli("compress", "mobilenet_v2_cifar", *TINY_DATA, "--budget", "55%", "--weights", weights, "--epochs",
                 "1", *QUICK_EXPORT, "--quiet", "--strategy", "auto", "--auto-steps", "3", "--out", out)  # fmt: skip
    assert result.code == 0, result.err
    strategy = json.loads((out / "report.json").read_text())["strategy"]
    candidates = strategy["candidates"]
    assert [c["strategy"] for c in candidates] == ["shape", "compound", "prune"]
    assert all(c["steps"] == 3 and 0 <= c["val_before"] <= 1 and 0 <= c["val_after"] <= 1 for c in candidates)
    chosen = [c for c in candidates if c["chosen"]]
    assert len(chosen) == 1 and strategy["chosen"] == chosen[0]["strategy"]
    assert chosen[0]["val_after"] == max(c["val_after"] for c in candidates)
    assert (strategy["pruning"] is None) == (strategy["chosen"] == "shape")
    assert "## Strategy search" in (out / "report.md").read_text()


def test_auto_needs_a_trained_start_and_a_plan_cannot_search(cli, tmp_path):
    scratch = cli("compress", "mobilenet_v2_cifar", *TINY_DATA, "--budget", "60%", "--epochs", "1", "--quiet",
                  "--strategy", "auto", "--out", tmp_path / "run")  # fmt: skip
    assert_one_line_error(scratch, "--strategy auto compares splits of a trained network")
    assert_one_line_error(cli("plan", "mobilenet_v2_cifar", "--budget", "60%", "--strategy", "auto"),
                          "a plan takes shape, prune or compound")  # fmt: skip


def test_shape_search_starts_the_run_from_the_best_candidate_on_validation(cli, tmp_path):
    weights, out = _weights(tmp_path), tmp_path / "run"
    result = cli("compress", "mobilenet_v2_cifar", *TINY_DATA, "--budget", "50%", "--weights", weights, "--epochs",
                 "1", *QUICK_EXPORT, "--quiet", "--shape-search", "2", "--out", out)  # fmt: skip
    assert result.code == 0, result.err
    found = json.loads((out / "report.json").read_text())["strategy"]["shape_search"]
    assert len(found) == 1 + 3 + 2 and sum(c["chosen"] for c in found) == 1
    best = next(c for c in found if c["chosen"])
    assert best["val"] == max(c["val"] for c in found)
    plan = json.loads((out / "run.json").read_text())["plan"]
    assert len(plan["searched_alphas"]) == 3  # a rebuild (--resume) starts from the chosen shape
    assert "## Shape search" in (out / "report.md").read_text()
    scratch = cli("compress", "mobilenet_v2_cifar", *TINY_DATA, "--budget", "50%", "--epochs", "1", "--quiet",
                  "--shape-search", "2", "--out", tmp_path / "scratch")  # fmt: skip
    assert_one_line_error(scratch, "--shape-search scores shapes by a trained network's weights")


def test_compress_with_the_input_adaptor_exports_and_loads_back(cli, tmp_path):
    weights, out = _weights(tmp_path), tmp_path / "run"
    result = cli("compress", "mobilenet_v2_cifar", *TINY_DATA, "--budget", "45%", "--weights", weights, "--epochs",
                 "1", *QUICK_EXPORT, "--quiet", "--input-adaptor", "--out", out)  # fmt: skip
    assert result.code == 0, result.err
    report = json.loads((out / "report.json").read_text())
    assert report["adaptors"][0]["kind"] == "input" and report["macs"]["final_total"] <= report["budget"]["macs"]
    import onnxruntime as ort

    x = torch.randn(2, 3, 32, 32)
    session = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    exported = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    with torch.no_grad():  # the network rebuilt from the spec computes what was exported
        torch.testing.assert_close(autosc.load_frozen(out)(x), torch.from_numpy(exported), rtol=1e-3, atol=1e-4)
    assert (out / "shape.png").is_file()


def test_plan_says_what_pruning_removed_and_where_the_input_is_resized(cli):
    args = ["plan", "mobilenet_v2_cifar", "--budget", "50%", "--input-size", "28", "--in-channels", "1",
            "--num-classes", "10", "--strategy", "prune", "--input-adaptor"]  # fmt: skip
    refused = cli(*args)  # plan reads no images, and the default importance (taylor) needs some
    assert refused.code == 2 and refused.err.count("\n") == 1 and "--importance l1 or bn" in refused.err, refused.err
    images = cli("plan", "mobilenet_v2_cifar", "--budget", "50%", "--input-size", "28", "--strategy", "prune", "--data",
                 "synthetic", "--subset", "96", "--test-subset", "64")  # fmt: skip
    assert images.code == 0, images.err  # --data: taylor ranks on the images compress would read
    assert "strategy prune: Torch-Pruning (taylor, global ratio" in " ".join(images.out.split())
    result = cli(*args, "--importance", "l1")
    assert result.code == 0, result.err
    text = " ".join(result.out.split())
    assert "strategy prune: Torch-Pruning (l1, global ratio" in text and "the shape is held at the identity" in text
    assert "adaptor 1 resizes the input image before its cell" in text
