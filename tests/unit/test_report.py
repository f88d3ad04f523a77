"""report.md, shape.png and dynamics.png from a typed Report: content, valid pictures, the Optional fields absent."""

import copy
import json

import matplotlib.image as mpimg
import pytest
from matplotlib._pylab_helpers import Gcf

from autosc.adaptor.module import alpha_to_factor
from autosc.errors import AutoscError
from autosc.formats import migrate_report
from autosc.report import Accuracy, Adaptor, Report, plot_dynamics, render_markdown, write_report
from autosc.report.dynamics_plot import _initial_factor
from autosc.units import format_count

COMMAND = "autosc compress mobilenet_v2_cifar --budget 40M --data fashion-mnist --epochs 3 --width auto"
ADAPTORS = [
    # cell, human size, learned size, s, sigma, alpha start, alpha end
    ("features.2", 32, 27, 0.86, 0.72, 3.9, 0.94),
    ("features.6", 16, 12, 0.88, 0.76, 3.9, 1.15),
    ("features.11", 8, 6, 0.91, 0.82, 3.9, 1.52),
]
HUMAN_SIZES = [32] * 4 + [16] * 3 + [8] * 7 + [4] * 5  # MobileNetV2-CIFAR: features.0 .. features.18


def learned_sizes() -> list[int]:
    """Human sizes with each adaptor's factor applied from its cell on (rounded like the global adaptor)."""
    scale, out = 1.0, []
    factors = {f"features.{i}": None for i in range(len(HUMAN_SIZES))}
    for name, human, learned, *_ in ADAPTORS:
        factors[name] = learned / human
    for i, human in enumerate(HUMAN_SIZES):
        scale *= factors[f"features.{i}"] or 1.0
        out.append(max(2, round(human * scale)))
    return out


def make_report_dict() -> dict:
    """A report.json as the run writes it (every key the schema requires)."""
    layers = [f"features.{i}" for i in range(len(HUMAN_SIZES))]
    return {
        "model": "mobilenet_v2_cifar",
        "data": "fashion-mnist",
        "input_size": [32, 32],
        "command": COMMAND,
        "budget": {"macs": 40_000_000, "memory_bytes": None, "convention": "standard"},
        "width": 0.81,
        "macs": {
            "convention": "standard",
            "counter": "torch.utils.flop_counter (FLOPs/2: conv + linear, BN folded)",
            "human": 94_700_000,
            "widened": 63_100_000,
            "final": 39_650_000,
            "final_resize": 210_000,
            "final_total": 39_860_000,
        },
        "params": {"human": 2_350_000, "final": 1_610_000},
        "activation_bytes": {"human": 6_200_000, "final": 2_900_000},
        "adaptors": [
            {
                "name": n,
                "human_size": [h, h],
                "size": [s, s],
                "s": f,
                "sigma": sig,
                "alpha_start": a0,
                "alpha_end": a1,
            }
            for n, h, s, f, sig, a0, a1 in ADAPTORS
        ],
        "accuracy": {"final": 0.9137, "best": 0.9152, "human": None, "val": 0.9201, "human_val": None},
        "onnx": {"path": "model.onnx", "opset": 18, "exporter": "dynamo", "max_abs_diff": 3.1e-7, "pooled_resizes": 1},
        "latency_ms": {
            "compressed": {"p50": 1.21, "p90": 1.34, "p99": 1.41},
            "human": {"p50": 1.52, "p90": 1.66, "p99": 1.75},
            "baseline": {"p50": 1.12, "p90": 1.25, "p99": 1.33},
            "threads": 1,
            "batch": 1,
            "runs": 200,
        },
        "baseline": {"width": 0.62, "accuracy": 0.9021, "epochs": 3, "macs": 39_100_000, "params": 1_420_000},
        "layers": {
            "human": [{"name": n, "size": [s, s]} for n, s in zip(layers, HUMAN_SIZES, strict=True)],
            "learned": [{"name": n, "size": [s, s]} for n, s in zip(layers, learned_sizes(), strict=True)],
        },
        "epochs": 3,
        "train": {"epochs": 3, "batch_size": 128, "lr": 0.1, "seed": 0},
        "alpha_step": 1,
        "env": {"torch": "2.14.1", "onnxruntime": "1.22.0", "cpu": "AMD EPYC 7B13", "python": "3.12.3"},
        "seconds": 412.5,
    }


def make_report() -> Report:
    return Report.from_dict(make_report_dict())


def make_metrics(n: int = 3) -> list[dict]:
    out = []
    for e in range(1, n + 1):
        t = e / 3
        out.append(
            {
                "epoch": e,
                "train_loss": 1.2 - 0.3 * t,
                "train_acc": 0.6 + 0.3 * t,
                "test_loss": 0.9 - 0.2 * t,
                "test_acc": 0.7 + 0.21 * t,
                "macs": 39_860_000 - 40_000 * (e % 2),
                "factors": [1 - (1 - a[3]) * t for a in ADAPTORS],
                "sizes": [[round(a[1] * (1 - (1 - a[3]) * t))] * 2 for a in ADAPTORS],
                "alphas": [a[5] + (a[6] - a[5]) * t for a in ADAPTORS],
                "lr": 0.05 * (1 - t),
                "seconds": 137.5,
            }
        )
    return out


def assert_picture(path) -> None:
    image = mpimg.imread(path)
    assert image.ndim == 3 and image.shape[2] in (3, 4)
    height, width = image.shape[:2]
    assert 500 <= height <= 1200 and 1000 <= width <= 2000, image.shape
    assert image[..., :3].std() > 0.05  # not blank
    assert (image[..., :3] < 0.5).mean() > 0.005  # some dark ink: lines and text were drawn


def check_run(tmp_path, report: Report, metrics: list[dict]) -> str:
    figures_before = Gcf.get_num_fig_managers()
    paths = write_report(tmp_path, report, metrics)
    assert [p.name for p in paths] == ["report.md", "shape.png", "dynamics.png"]
    for p in paths:
        assert p.is_file() and p.parent == tmp_path
    assert_picture(paths[1])
    assert_picture(paths[2])
    assert not list(tmp_path.glob(".*.tmp")), "a temporary file was left behind"
    assert Gcf.get_num_fig_managers() == figures_before, "figures leaked into pyplot"
    return paths[0].read_text(encoding="utf-8")


@pytest.mark.slow
def test_full_report_with_baseline(tmp_path):
    report = make_report()
    md = check_run(tmp_path, report, make_metrics())
    title = md.splitlines()[0]
    assert title.startswith("# ") and "mobilenet_v2_cifar" in title and "fashion-mnist" in title and "40.00M" in title
    assert "91.37%" in md and "90.21%" in md  # this run and the baseline
    assert "+1.16 points" in md
    assert format_count(94_700_000) in md and format_count(39_650_000) in md  # human and final MACs
    assert "standard" in md and "99.7%" in md  # convention named; (39.65M + 0.21M resize) / 40M
    assert "| autosc (this run) |" in md and "baseline" in md.splitlines()[4]
    for name, human, learned, *_ in ADAPTORS:
        assert f"`{name}`" in md and f"{learned}×{learned}" in md and f"{human}×{human}" in md
    assert f"```sh\n{COMMAND}\n```" in md
    assert "![shape](shape.png)" in md and "![dynamics](dynamics.png)" in md
    assert "1.21 / 1.34 ms" in md and "1 thread, batch 1" in md
    assert "AMD EPYC 7B13" in md and "2.14.1" in md
    assert "WARNING" not in md and "Note: no alpha moved" not in md


@pytest.mark.slow
def test_memory_only_budget_without_baseline(tmp_path):
    report = make_report()
    report.budget = {"macs": None, "memory_bytes": 3 * 2**20, "convention": "standard"}
    report.baseline = None
    report.latency_ms.baseline = None
    md = check_run(tmp_path, report, make_metrics())
    assert "3.00MiB activations" in md.splitlines()[0]
    assert "% of memory budget used" in md and "92.2%" in md  # 2.9e6 / 3 MiB
    assert "% of MAC budget used" not in md
    assert "baseline" not in md.split("## Adaptors")[0].lower()
    assert "fewer MACs than the human network" in md


def test_over_budget_is_loud(tmp_path):
    report = make_report()
    report.macs.final = 41_000_000
    md = render_markdown(report)
    assert "WARNING: OVER MAC BUDGET" in md and "103.0%" in md
    report.budget = {"macs": None, "memory_bytes": 2_000_000, "convention": "standard"}
    assert "WARNING: OVER MEMORY BUDGET" in render_markdown(report)


@pytest.mark.slow
def test_optional_fields_absent_still_render(tmp_path):
    """Everything the schema leaves Optional is None: no baseline, no timing, no accuracy, no alphas."""
    report = make_report()
    report.baseline = None
    report.latency_ms.baseline = None
    report.seconds = None
    report.accuracy = Accuracy(final=None, best=None)
    for a in report.adaptors:
        a.alpha_start = a.alpha_end = None
    metrics = [{"epoch": m["epoch"], "factors": m["factors"]} for m in make_metrics()]
    md = check_run(tmp_path, report, metrics)
    assert "no accuracy measured" in md and "baseline" not in md.split("## Adaptors")[0].lower()
    assert format_count(39_650_000) in md
    assert "Trained 3 epochs." in md
    assert "| `features.2` | 32×32 | 27×27 | 0.860 | — |" in md  # alpha moved: unknown
    md = check_run(tmp_path, report, [])  # no metrics at all
    assert "features.11" in md
    report.adaptors = []
    assert "No adaptors were placed." in check_run(tmp_path, report, [])


@pytest.mark.slow
def test_single_epoch_without_final_accuracy(tmp_path):
    report = make_report()
    report.accuracy.final = None
    md = check_run(tmp_path, report, make_metrics(1))
    assert "91.52%" in md  # best is shown even without a final accuracy


def test_still_alphas_are_flagged():
    report = make_report()
    for a in report.adaptors:
        a.alpha_end = a.alpha_start + 2e-4
    md = render_markdown(report)
    assert "Note: no alpha moved" in md and "docs/algorithm.md" in md


def test_collapsed_adaptors_say_what_they_kept():
    report = make_report()
    report.adaptors[0].branch = "full"
    report.adaptors[1].branch = "low"
    md = render_markdown(report)
    assert "| kept |" in md and "resize only" in md and "max-pool + resize" in md and "`--collapse`" in md


def test_initial_factor_prefers_s_start():
    """The run writes s_start; older report.json files only have alpha_start, and then it is derived."""
    a = Adaptor(name="x", human_size=[8, 8], size=[7, 7], sigma=0.8, s=0.9, alpha_start=3.9, s_start=0.97)
    assert _initial_factor(a) == 0.97
    a.s_start = None
    assert _initial_factor(a) == pytest.approx(alpha_to_factor(3.9))
    a.alpha_start = None
    assert _initial_factor(a) is None


def test_report_round_trips():
    data = make_report_dict()
    report = Report.from_dict(data)
    assert report.macs.final_total == 39_860_000
    # report.json keys and values as written, at the current format (the dict above is a version 1 file)
    assert report.to_dict() == migrate_report(data)
    assert Report.from_dict(json.loads(json.dumps(report.to_dict()))) == report
    report.baseline, report.seconds, report.latency_ms.baseline = None, None, None
    report.adaptors[0].branch, report.adaptors[0].s_start, report.adaptors[1].alpha_end = "low", 0.95, None
    assert Report.from_dict(json.loads(json.dumps(report.to_dict()))) == report


def test_required_keys_missing_is_a_clear_error(tmp_path):
    data = copy.deepcopy(make_report_dict())
    del data["width"]
    with pytest.raises(AutoscError, match="width"):
        plot_dynamics(Report.from_dict(data), make_metrics(), tmp_path / "d.png")
    assert not (tmp_path / "d.png").exists()
    data = copy.deepcopy(make_report_dict())
    del data["macs"]["final"]
    with pytest.raises(AutoscError, match="final"):
        Report.from_dict(data)
