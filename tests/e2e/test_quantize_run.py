"""``compress --quantize int8`` end to end (autosc/run/quantized.py; issue 31): the shared tiny run writes INT8 files
beside the float ones and measures them; the INT8 accuracy on trained networks is tests/unit/test_quantize.py's."""

import json

import onnx
import pytest

from autosc.export.quantize import onnx_accuracy
from autosc.report import Report

from ..conftest import assert_one_line_error


@pytest.mark.slow
def test_compress_writes_checked_int8_files_and_measures_them(tiny_run):
    report = json.loads((tiny_run / "report.json").read_text())
    q = report["quantized"]
    assert q["kind"] == "int8" and q["calibration_images"] == 32 and q["seed"] == report["train"]["seed"]
    assert q["files"] == {"compressed": "model.int8.onnx", "human": "human.int8.onnx"}
    for name in q["files"].values():
        onnx.checker.check_model(str(tiny_run / name))
    # the float file's ONNX Runtime top-1 is the report's PyTorch top-1 on the same 64 test images (a near tie
    # of an argmax may flip one image)
    assert q["accuracy"]["compressed"]["float"] == pytest.approx(report["accuracy"]["final"], abs=1 / 64 + 1e-9)
    assert all(q["accuracy"][k]["int8_val"] is not None for k in ("compressed", "human"))
    assert q["lost"] == pytest.approx(q["accuracy"]["compressed"]["float"] - q["accuracy"]["compressed"]["int8"])
    assert q["within_limit"] == (q["lost"] <= q["loss_limit"])
    assert set(q["latency"]) == {"compressed", "compressed_int8", "human", "human_int8"}
    assert all(t["p50"] <= t["p90"] for t in q["latency"].values()) and q["runs"] == 5
    assert q["logit_images"] == 64 and q["logit_diff"] >= 0
    assert Report.from_dict(report).quantized.to_dict() == q
    # ONNX Runtime ran the INT8 file's convolutions as integer kernels, none of them in float (U8S8)
    profile = q["profile"]["compressed_int8"]
    assert profile["QLinearConv"]["nodes"] > 0 and profile.get("Conv", {"float_nodes": 0})["float_nodes"] == 0
    assert profile["Resize"]["nodes"] == len(report["adaptors"]) - report["onnx"]["pooled_resizes"]
    assert "## INT8" in (tiny_run / "report.md").read_text()


@pytest.mark.slow
def test_the_recorded_int8_accuracy_is_the_written_files_own(tiny_run):
    """Read back: ONNX Runtime's top-1 of the files in the folder on the run's test split (loaded again from
    run.json's configuration) is what report.json says."""
    from torch.utils.data import DataLoader

    from autosc.config import RunConfig
    from autosc.run.data import load_dataset

    report = json.loads((tiny_run / "report.json").read_text())
    config = RunConfig.from_dict(json.loads((tiny_run / "run.json").read_text())["config"])
    bundle = load_dataset(config, tuple(report["input_size"]))
    paths = {"compressed": tiny_run / "model.onnx", "compressed_int8": tiny_run / "model.int8.onnx"}
    found = onnx_accuracy(paths, DataLoader(bundle.test, batch_size=16))
    acc = report["quantized"]["accuracy"]["compressed"]
    assert found == {"compressed": acc["float"], "compressed_int8": acc["int8"]}


@pytest.mark.slow
def test_export_quantizes_a_runs_frozen_network_on_the_runs_own_images(cli, tiny_run, tmp_path):
    """``autosc export frozen.pt --quantize int8`` in a run folder reads the data from run.json; with the run's seed
    and image count it writes the same INT8 file compress wrote."""
    out = tmp_path / "net.onnx"
    result = cli("export", tiny_run / "frozen.pt", "-o", out, "--exporter", "torchscript", "--quantize", "int8",
                 "--calibration-images", "32", "--json")  # fmt: skip
    assert result.code == 0, result.err
    int8 = result.json()["quantized"]
    assert int8["path"] == str(tmp_path / "net.int8.onnx") and int8["data"] == "synthetic"
    onnx.checker.check_model(int8["path"])
    report = json.loads((tiny_run / "report.json").read_text())["quantized"]
    assert int8["seed"] == report["seed"] and int8["calibration_images"] == 32
    # the same float file (torchscript, same weights) and the same calibration images: the same figures
    assert int8["accuracy"] == report["accuracy"]["compressed"]


def test_export_quantize_refuses_bad_options_in_one_line(cli, tmp_path):
    assert_one_line_error(cli("export", "frozen.pt", "--quantize", "int4"), "--quantize must be one of none, int8")
    assert_one_line_error(cli("export", "frozen.pt", "--quantize", "int8", "--calibration-images", "0"),
                          "--calibration-images must be 1 or more")  # fmt: skip


@pytest.mark.slow
def test_export_quantize_without_data_or_run_folder_says_what_to_give(cli, tiny_run, tmp_path):
    alone = tmp_path / "frozen.pt"
    for name in ("frozen.pt", "frozen.shape.json"):
        (tmp_path / name).write_bytes((tiny_run / name).read_bytes())
    result = cli("export", alone, "-o", tmp_path / "m.onnx", "--exporter", "torchscript", "--quantize", "int8")
    assert_one_line_error(result, "--quantize int8 calibrates on training images: give --data")


@pytest.mark.slow
def test_a_latency_budget_with_quantize_int8_is_on_the_int8_network(cli, tmp_path, monkeypatch):
    """``--latency 50% --quantize int8``: the plan's latency model is an INT8 one (its cache key, run.json's
    ``latency_int8``), the end check timed INT8 files, and a resume with another --quantize is refused."""
    from autosc.cost.latency_model import default_cache_dir

    from ..conftest import TINY_DATA

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # a fresh cache: the INT8 model is measured here
    run = tmp_path / "run"
    # at width 1 the widened network is the reference itself, so the budget cuts whatever the host's speed
    result = cli("compress", "mobilenet_v2_cifar", "--width", "1", "--latency", "50%", *TINY_DATA, "--epochs", "1",
                 "--quantize", "int8", "--calibration-images", "16", "--exporter", "torchscript", "--latency-runs",
                 "5", "--no-retime", "--out", run)  # fmt: skip
    assert result.code == 0, result.err
    assert "| INT8 top-1 " in " ".join(result.out.split())  # the closing line gives the file that ships too
    plan = json.loads((run / "run.json").read_text())["plan"]
    assert plan["latency_int8"] is True
    keys = [json.loads(p.read_text())["key"] for p in default_cache_dir().glob("*.json")]
    assert keys and all(k.get("int8") is True for k in keys)  # every timing this run cached was of INT8 files
    report = json.loads((run / "report.json").read_text())
    assert report["latency_ms"]["int8"] is True and report["latency_ms"]["budget_met"] is not None
    assert report["quantized"]["files"]["compressed"] == "model.int8.onnx"
    assert "both as INT8 files" in (run / "report.md").read_text()
    assert_one_line_error(cli("compress", "--out", run, "--resume", "--quantize", "none"), "--quantize")
