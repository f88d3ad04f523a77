"""The one run configuration: flat names, strict types, CLI options derived from it, and the command it records."""

import shlex

import pytest
import torch
import typer.main

from autosc import AutoscError, RunConfig
from autosc.cli import app
from autosc.config import DataConfig, PlanConfig
from autosc.run import command_line
from autosc.train import DualRule, TrainConfig, lagrangian_grads


def _cli_params(name: str) -> dict:
    group = typer.main.get_group(app)
    return {p.name: p for p in group.commands[name].params}


def test_every_config_field_is_a_compress_option_and_nothing_else_is():
    params = _cli_params("compress")
    cli_fields = {f.name for _, f in RunConfig.option_fields() if f.metadata.get("cli", True)}
    session = {"preset", "out", "resume", "force", "quiet", "model", "help"}
    assert set(params) - session == cli_fields
    # every default is stated once: the CLI passes "not given" and the config supplies the value
    assert all(params[name].default is None for name in cli_fields)
    assert params["cost_term"].secondary_opts == ["--no-cost-term"]  # a boolean with a default gets both spellings
    assert "--adaptor-at" in params["adaptor_at"].opts and params["adaptor_at"].multiple


def test_plan_options_are_the_plan_and_data_config_fields():
    """The data options too: with --data, taylor ranks channels on the images compress would read."""
    params = _cli_params("plan")
    fields = {f.name for kind in (PlanConfig, DataConfig) for f in kind.__dataclass_fields__.values()
              if f.metadata.get("cli", True)}  # fmt: skip
    assert set(params) - {"model", "in_channels", "as_json", "help", "quantize"} == fields  # quantize: INT8 latency


def test_flat_names_are_unique_and_cover_every_group():
    names = RunConfig.option_names()
    assert len(names) == len(set(names))
    for group, kind in RunConfig.groups().items():
        assert set(kind.__dataclass_fields__) <= set(names), group


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"epochs": 1.7}, "epochs must be an integer, got 1.7"),
        ({"epochs": "ten"}, "epochs must be an integer, got 'ten'"),
        ({"lr": True}, "lr must be a number, got True"),
        ({"cost_term": "yes"}, "cost_term must be true or false"),
        ({"adaptor_at": [1, 2]}, "adaptor_at must be a list of names"),
        ({"learning_rate": 0.1}, "unknown key(s) learning_rate"),
    ],
)
def test_wrong_types_and_unknown_keys_are_refused_naming_the_key(values, message):
    with pytest.raises(AutoscError, match="^preset p.toml: ") as info:
        RunConfig.from_flat(values, where="preset p.toml")
    assert message in str(info.value)


def test_flat_values_land_in_their_groups_and_round_trip_through_run_json():
    config = RunConfig.from_flat(
        {"model": "resnet18_cifar", "budget": "9M", "data": "cifar10", "lr": 1, "opset": 17, "adaptor_at": "a,b"}
    )
    assert (config.plan.model, config.plan.budget, config.dataset.data) == ("resnet18_cifar", "9M", "cifar10")
    assert config.train.lr == 1.0 and isinstance(config.train.lr, float)  # an int is widened where a float is wanted
    assert config.export.opset == 17 and config.plan.adaptor_at == ["a", "b"]
    assert RunConfig.from_dict(config.to_dict()) == config
    assert config.to_flat()["latency_runs"] == 200  # defaults included


def test_recipe_defaults_are_filled_once_by_resolve():
    small, large = TrainConfig().resolve("mobilenet_v2_cifar", (32, 32)), TrainConfig().resolve("resnet18", (224, 224))
    assert (small.epochs, small.batch_size, small.lr, small.weight_decay) == (200, 128, 0.1, 4e-5)
    assert (large.epochs, large.batch_size, large.lr, large.weight_decay) == (100, 64, 0.05, 5e-4)
    assert TrainConfig(lr=0.01).resolve("resnet18", (224, 224)).lr == 0.01  # a given value is kept
    with pytest.raises(AutoscError, match="does not set epochs, batch_size, lr, weight_decay"):
        from autosc.train import Trainer

        Trainer(torch.nn.Linear(2, 2), [], [], TrainConfig())


def test_export_options_are_refused_before_training():
    for values, message in (({"opset": 9}, "--opset must be an integer from 17"), ({"latency_runs": 0}, "at least 1")):
        with pytest.raises(AutoscError, match=message):
            RunConfig.from_flat(values).export.validate()


def test_the_recorded_command_rebuilds_the_same_config(monkeypatch):
    given = {"model": "mobilenet_v2_cifar", "budget": "8M", "data": "synthetic", "epochs": 2, "cost_term": False,
             "adaptor_at": ["features.2", "features.9"], "baseline": True, "lr": 0.05}  # fmt: skip
    config = RunConfig.from_flat(given)
    command = command_line(config, given)
    assert "--no-cost-term" in command and command.count("--adaptor-at") == 2 and "--baseline" in command
    parts = shlex.split(command)
    assert parts[:3] == ["autosc", "compress", "mobilenet_v2_cifar"]
    from typer.testing import CliRunner

    seen = {}

    def fake_compress(model, **options):
        seen.update(RunConfig.from_flat({**{k: v for k, v in options.items() if k in RunConfig.option_names()},
                                         "model": model}).to_dict())  # fmt: skip
        raise SystemExit(0)

    monkeypatch.setattr("autosc.run.compress", fake_compress)  # the CLI looks the function up when it runs
    CliRunner().invoke(app, parts[1:])
    assert seen == config.to_dict()


def test_dual_ascent_and_penalty_weigh_the_cost_as_documented():
    alpha = torch.nn.Parameter(torch.tensor([0.3, -0.2]))
    alpha.grad = torch.tensor([1.0, 0.0])

    def cost():
        return 1.5 * torch.sigmoid(alpha).sum()  # over budget: ratio > 1

    over = cost().item() - 1
    grads, dual = lagrangian_grads([alpha], cost, 2.0, DualRule(dual_lr=0.1))
    g_cost = torch.autograd.grad(cost(), alpha)[0]
    expected = alpha.grad / alpha.grad.norm() + 2.0 * g_cost / g_cost.norm()
    assert torch.allclose(grads[0], expected) and dual == pytest.approx(2.0 + 0.1 * over)
    grads, dual = lagrangian_grads([alpha], cost, 2.0, DualRule(penalty=10.0))
    assert dual == pytest.approx(10.0 * over)  # memoryless: the weight is the penalty's, not the old dual
    assert torch.allclose(grads[0], alpha.grad / alpha.grad.norm() + dual * g_cost / g_cost.norm())
    alpha.grad = torch.tensor([float("inf"), 0.0])
    assert lagrangian_grads([alpha], cost, 2.0, DualRule()) is None  # an fp16 overflow step is skipped


def test_compress_takes_the_input_size_as_a_tuple_as_plan_does():
    from autosc.run.compress import _given
    from autosc.run.pipeline import Inputs

    given = _given(None, None, {"input_size": (28, 32), "budget": "50%"}, "mobilenet_v2_cifar", Inputs())
    assert RunConfig.from_flat(given).plan.input_size == "28x32"
