"""`autosc plan`: the envelope a user sees before training, and its refusals."""

import pytest

import autosc

from ..conftest import assert_one_line_error


@pytest.mark.slow
def test_plan_json_envelope(cli):
    result = cli("plan", "mobilenet_v2_cifar", "--budget", "40M", "--json")
    assert result.code == 0, result.err
    d = result.json()
    m = d["macs"]
    assert m["floor"] < m["projected"] + m["projected_resize"] <= 40_000_000 < m["widened"] + m["widened_resize"]
    assert d["width_mode"] == "auto" and len(d["adaptors"]) == 3
    assert all(a["size"][0] <= a["human_size"][0] for a in d["adaptors"])


def test_plan_table(cli):
    result = cli("plan", "resnet18_cifar", "--budget", "300M", "--adaptors", "2", "--width", "0.8")
    assert result.code == 0, result.err
    assert "smallest reachable" in result.out and "projected identity shape" in result.out


@pytest.mark.slow
def test_plan_named_cells(cli):
    d = cli(
        "plan",
        "resnet18_cifar",
        "--budget",
        "50%",
        "--width",
        "1",
        "--adaptor-at",
        "layer1.1",
        "--adaptor-at",
        "layer3.1",
        "--json",
    ).json()
    assert [a["name"] for a in d["adaptors"]] == ["layer1.1", "layer3.1"]


@pytest.mark.slow
def test_impossible_budget_names_smallest_reachable(cli):
    assert_one_line_error(
        cli("plan", "mobilenet_v2_cifar", "--budget", "1M", "--width", "1"), "impossible", "smallest reachable"
    )


@pytest.mark.slow
def test_budget_above_widened_cost(cli):
    assert_one_line_error(
        cli("plan", "mobilenet_v2_cifar", "--budget", "200M", "--width", "1"),
        "at or above the widened network's cost",
        "--width auto",
    )


@pytest.mark.parametrize("n", ["0", "99"])
@pytest.mark.slow
def test_bad_adaptor_count(cli, n):
    assert_one_line_error(
        cli("plan", "mobilenet_v2_cifar", "--budget", "40M", "--adaptors", n), "--adaptors must be between 1 and"
    )


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--budget", "300X"], "unknown unit 'X'"),
        (["--memory", "4XB"], "unknown unit 'XB'"),
        (["--budget", "40M", "--width", "wide"], "--width must be 'auto'"),
        pytest.param(
            ["--budget", "40M", "--adaptor-at", "features.99"], "cannot take an adaptor", marks=pytest.mark.slow
        ),
        ([], "no budget given"),
    ],
)
def test_plan_bad_input(cli, args, fragment):
    assert_one_line_error(cli("plan", "mobilenet_v2_cifar", *args), fragment)


@pytest.mark.slow
def test_an_unreachable_budget_has_its_own_error_type():
    """What benchmarks/trained records as "cannot reach the budget", without reading the message."""
    from autosc.errors import AutoscError, UnreachableBudget

    with pytest.raises(UnreachableBudget, match="impossible"):
        autosc.plan("mobilenet_v2_cifar", budget="1M", width=1.0, input_size=(32, 32))
    assert issubclass(UnreachableBudget, AutoscError)  # still one line at the CLI


@pytest.mark.slow
def test_plan_says_when_the_shape_alone_has_little_room(cli):
    floor = cli("plan", "mobilenet_v2_cifar", "--budget", "40M", "--width", "1", "--json").json()["macs"]["floor"]
    near = cli("plan", "mobilenet_v2_cifar", "--budget", f"{floor / 0.9 / 1e6:.3f}M", "--width", "1", "--json")
    assert near.code == 0, near.err
    assert "90% of the MAC budget" in near.json()["floor_note"] and "--strategy" in near.json()["floor_note"]
    text = cli("plan", "mobilenet_v2_cifar", "--budget", f"{floor / 0.9 / 1e6:.3f}M", "--width", "1")
    assert "the shape alone has little room left" in text.out
    far = cli("plan", "mobilenet_v2_cifar", "--budget", f"{floor / 0.6 / 1e6:.3f}M", "--width", "1", "--json")
    assert "floor_note" not in far.json()
