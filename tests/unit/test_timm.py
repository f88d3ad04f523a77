"""timm networks as built-in ``timm:NAME`` networks: build, width, placement, plan, freeze and export."""

import sys

import pytest
import torch

import autosc

pytest.importorskip("timm")

from autosc.adaptor.placement import find_candidates  # noqa: E402
from autosc.errors import AutoscError  # noqa: E402
from autosc.export import export_onnx  # noqa: E402
from autosc.freeze import freeze  # noqa: E402
from autosc.models import ModelSpec, build_model, default_input_size, is_zoo_model, spec_from_file  # noqa: E402
from autosc.models.cells import model_cells  # noqa: E402
from autosc.models.timm_models import timm_widenable  # noqa: E402

from ..conftest import assert_one_line_error  # noqa: E402

SIZE = 64
FAMILIES = ["timm:mobilenetv3_large_100", "timm:efficientnet_b0", "timm:resnet18", "timm:regnetx_002"]


def _channels(model: torch.nn.Module) -> int:
    return sum(m.out_channels for m in model.modules() if isinstance(m, torch.nn.Conv2d))


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=pytest.mark.slow) if n == "timm:efficientnet_b0" else n for n in FAMILIES]
)
def test_builds_and_has_candidates(name):
    model = build_model(name, num_classes=10, in_channels=1)
    assert model(torch.zeros(2, 1, SIZE, SIZE)).shape == (2, 10)
    with torch.device("meta"):
        assert build_model(name).num_classes == 1000  # num_classes None: ImageNet's
    assert find_candidates(model, (SIZE, SIZE), in_channels=1)


def test_regnet_stages_are_opened_into_blocks():
    cells = [name for name, _ in model_cells(build_model("timm:regnetx_002"))]
    assert "s3.b2" in cells and "s3" not in cells
    assert cells[0] == "stem" and cells[-2:] == ["final_conv", "head"]


@pytest.mark.parametrize("name", FAMILIES)
@pytest.mark.slow
def test_plan_fits_the_budget(name):
    plan = autosc.plan(name, budget="60%", input_size=SIZE, width=1.0)
    convention = plan.budget.convention
    assert plan.budget.macs == pytest.approx(0.6 * plan.human_macs, rel=1e-6)
    assert plan.projected.cost.budget_macs(convention) <= plan.budget.macs
    assert plan.cells and set(plan.cells) <= set(plan.candidates)


def test_width_maps_onto_the_channel_multiplier():
    assert timm_widenable("timm:efficientnet_b0") and timm_widenable("mobilenetv3_large_100")
    assert not timm_widenable("timm:resnet18") and not timm_widenable("timm:regnetx_002")
    base, wide = build_model("timm:efficientnet_b0"), build_model("timm:efficientnet_b0", width=1.25)
    assert _channels(wide) > _channels(base)
    assert wide.conv_stem.out_channels == 40 and wide.num_features == 1600  # timm's rounding: 32 -> 40, 1280 -> 1600
    assert _channels(build_model("timm:mobilenetv3_large_100", width=0.5)) < _channels(
        build_model("timm:mobilenetv3_large_100")
    )
    with torch.device("meta"):  # as make_plan and the width search build it
        assert build_model("timm:efficientnet_b0", width=1.25).conv_stem.out_channels == 40
    assert build_model("timm:efficientnet_b0").conv_stem.out_channels == 32  # the generator is restored


def test_width_on_a_family_without_multiplier_is_one_clear_line():
    with pytest.raises(AutoscError) as info:
        build_model("timm:resnet18", width=1.5)
    message = str(info.value)
    assert message == "timm:resnet18 has no channel multiplier, so width 1.5 cannot be applied; use width 1"


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("timm:resnt18", "timm:resnet18"),
        ("timm:no_such_network_at_all", "unknown timm model"),
        ("timm:hf-hub:timm/resnet18", "not a timm architecture name"),  # never a download
        ("timm:resnet18.a1_in1k", "not a timm architecture name"),
    ],
)
def test_unknown_or_sourced_name_is_one_line(name, fragment):
    with pytest.raises(AutoscError) as info:
        build_model(name)
    assert fragment in str(info.value) and "\n" not in str(info.value)


def test_unknown_name_on_the_cli(cli):
    assert_one_line_error(cli("plan", "timm:resnt18", "--budget", "60%"), "unknown timm model", "timm:resnet18")


def test_missing_timm_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "timm", None)  # import timm now raises ImportError
    with pytest.raises(AutoscError, match=r"pip install 'autosc\[timm\]'"):
        build_model("timm:resnet18")
    assert is_zoo_model("timm:resnet18")  # naming one needs no timm


def test_timm_names_are_zoo_names():
    assert is_zoo_model("timm:resnet18")
    assert not is_zoo_model("timm:hf-hub:timm/resnet18")
    assert default_input_size("timm:efficientnet_b0") == 224
    stored = ModelSpec("timm:efficientnet_b0", 1.25, 10).to_dict()
    assert spec_from_file(stored, source="a checkpoint") == ModelSpec("timm:efficientnet_b0", 1.25, 10)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["timm:mobilenetv3_large_100", "timm:resnet18"])
def test_freeze_and_export(name, tmp_path):
    plan = autosc.plan(name, budget="60%", input_size=SIZE, width=1.0, num_classes=10)
    frozen, spec = freeze(plan.network)
    assert spec["model"]["name"] == name and len(spec["adaptors"]) == len(plan.cells)
    x = torch.randn(2, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        plan.network.eval()
        torch.testing.assert_close(frozen(x), plan.network(x), rtol=1e-5, atol=1e-5)
    result = export_onnx(frozen, (SIZE, SIZE), tmp_path / "net.onnx", exporter="torchscript")
    assert result.max_abs_diff is not None and result.max_abs_diff < 1e-3
    assert result.resize_nodes > 0
