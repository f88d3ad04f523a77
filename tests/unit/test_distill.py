"""Distillation (autosc/train/distill.py): the loss as specified, a teacher that never learns, and the validation split."""

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from autosc import AutoscError
from autosc.data import load_data, split_validation
from autosc.models import build_model
from autosc.train import TrainConfig, Trainer
from autosc.train.distill import distillation_loss


def _logits(seed: int) -> torch.Tensor:
    return torch.randn(16, 10, generator=torch.Generator().manual_seed(seed)) * 3


def test_loss_is_the_blend_of_labels_and_soft_targets():
    s, t, y = _logits(0), _logits(1), torch.arange(16) % 10
    for temperature, weight in ((1.0, 0.5), (4.0, 0.5), (4.0, 0.9), (2.0, 1.0)):
        p_t = F.softmax(t / temperature, 1)
        kl = (p_t * (p_t.log() - F.log_softmax(s / temperature, 1))).sum(1).mean()
        expected = (1 - weight) * F.cross_entropy(s, y) + weight * temperature**2 * kl
        got = distillation_loss(s, t, y, temperature=temperature, weight=weight)
        assert torch.allclose(got, expected, rtol=1e-5), (temperature, weight)
    assert torch.equal(distillation_loss(s, t, y, temperature=4.0, weight=0.0), F.cross_entropy(s, y))


def test_temperature_is_not_ignored():
    s, t, y = _logits(0), _logits(1), torch.arange(16) % 10
    values = {T: float(distillation_loss(s, t, y, temperature=T, weight=1.0)) for T in (1.0, 2.0, 8.0)}
    assert len({round(v, 4) for v in values.values()}) == 3, values
    # the soft term vanishes when the student predicts the teacher's distribution, at any temperature
    assert float(distillation_loss(t.clone(), t, y, temperature=3.0, weight=1.0)) == pytest.approx(0, abs=1e-5)


def test_teacher_gets_no_gradient_and_keeps_its_statistics():
    bundle = load_data("synthetic", input_size=(32, 32), subset=64, test_subset=32, seed=0)
    student = build_model("resnet18_cifar", width=0.25, num_classes=10)
    teacher = build_model("resnet18_cifar", width=0.25, num_classes=10)
    before = copy.deepcopy(teacher.state_dict())
    config = TrainConfig(epochs=1, batch_size=16, lr=0.05, weight_decay=0.0, device="cpu", distill=True)
    trainer = Trainer(student, bundle.train, bundle.test, config, teacher=teacher)
    x, y = next(iter(torch.utils.data.DataLoader(bundle.train, batch_size=16)))
    trainer._train_batch(x, y)
    assert all(p.grad is None for p in teacher.parameters())
    assert not teacher.training  # eval mode: BatchNorm uses (and keeps) its running statistics
    for key, value in teacher.state_dict().items():
        assert torch.equal(value, before[key]), key
    # and the loss the student trained on is the distillation blend, not plain cross-entropy
    with torch.no_grad():
        s, t = student.eval()(x.contiguous(memory_format=torch.channels_last)), teacher(x)
    blend = distillation_loss(s, t, y, temperature=config.distill_temperature, weight=config.distill_weight)
    assert not torch.allclose(blend, F.cross_entropy(s, y))


def test_validation_split_is_held_out_of_training_and_not_augmented():
    bundle = load_data("synthetic", input_size=(32, 32), seed=0)
    split = split_validation(bundle, 0.25, seed=3)
    assert len(split.val) == 128 and len(split.train) == 384
    train_idx, val_idx = set(split.train.indices), set(split.val.indices)
    assert not train_idx & val_idx and len(train_idx | val_idx) == 512
    assert split.val.dataset.transform is bundle.test.transform  # read like the test split
    again = split_validation(bundle, 0.25, seed=3)
    assert again.val.indices == split.val.indices  # seeded
    assert split_validation(bundle, 0.0, seed=3) is bundle


def test_data_seed_holds_the_subsets_and_validation_split_while_the_run_seed_varies():
    from autosc import RunConfig
    from autosc.run import load_dataset

    def split(**flat):
        config = RunConfig.from_flat({"model": "mobilenet_v2_cifar", "data": "synthetic", "subset": 96,
                                      "test_subset": 32, "val_split": 0.25, **flat})  # fmt: skip
        bundle = load_dataset(config, (32, 32))
        return bundle.train.indices, bundle.val.indices, bundle.test.indices

    assert split(seed=30, data_seed=12) == split(seed=31, data_seed=12) == split(seed=12)
    assert split(seed=30) != split(seed=31)  # without it, the run's seed draws the split (as before)
    with pytest.raises(AutoscError, match="data_seed must be an integer"):
        RunConfig.from_flat({"data_seed": 1.5})


def test_warmup_ramps_the_learning_rate_then_cosine():
    bundle = load_data("synthetic", input_size=(32, 32), subset=64, test_subset=32, seed=0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10))
    config = TrainConfig(epochs=10, batch_size=16, lr=0.1, weight_decay=0.0, device="cpu", warmup=0.1)
    trainer = Trainer(net, bundle.train, bundle.test, config)  # 40 steps, 4 of warm-up
    lrs = []
    for _ in range(trainer.total_steps):
        lrs.append(trainer.weight_opt.param_groups[0]["lr"])
        trainer.weight_opt.step()
        trainer.weight_sched.step()
    assert lrs[:4] == pytest.approx([0.025, 0.05, 0.075, 0.1])
    assert (
        lrs[4] == pytest.approx(0.1)
        and lrs[-1] < 0.001
        and all(a >= b for a, b in zip(lrs[4:-1], lrs[5:], strict=True))
    )
