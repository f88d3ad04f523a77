"""Device-resident data (autosc/data/device.py) and the trainer's step without host reads (issue 19)."""

import pytest
import torch
from torch.utils.data import Subset, TensorDataset
from torchvision.transforms import v2

import autosc
from autosc import AutoscError
from autosc.data import load_data
from autosc.data.bundle import TensorImages
from autosc.data.device import DeviceImages, resident, why_not_resident
from autosc.data.transforms import transform_pair
from autosc.train import StopRequested, TrainConfig, Trainer, evaluate
from tests.helpers import write_cifar_files

CPU = torch.device("cpu")


def _images(n: int = 40, native: int = 12, size: int = 16, augment: bool = True, seed: int = 0):
    """A small augmented split in memory (TensorImages with autosc's own transforms), resized from ``native``."""
    g = torch.Generator().manual_seed(seed)
    pixels = torch.randint(0, 256, (n, 1, native, native), dtype=torch.uint8, generator=g)
    labels = torch.randint(0, 4, (n,), generator=g)
    train_tf, test_tf = transform_pair((size, size), (native, native), ((0.3,), (0.2,)), augment)
    return TensorImages(pixels, labels, train_tf), TensorImages(pixels, labels, test_tf)


def test_a_batch_equals_the_per_image_transform_with_the_same_draws():
    train, _ = _images()
    split = Subset(train, [5, 3, 9, 0, 17, 22])
    data = DeviceImages.from_dataset(split, CPU)
    draws = data.draws(torch.Generator().manual_seed(1))
    assert draws.flip.any() and not draws.flip.all() and draws.top.max() > 0  # the draws really vary
    index = torch.tensor([4, 0, 2, 5])
    x, y = data.batch(index, draws)
    spec = train.transform.spec
    pad_h, pad_w = spec.crop_padding
    for row, i in enumerate(index.tolist()):
        item = split.indices[i]
        img = v2.functional.resize(train.images[item], [16, 16])  # what v2.Resize does to this one image
        img = torch.nn.functional.pad(img, (pad_w, pad_w, pad_h, pad_h))
        t, left = int(draws.top[i]), int(draws.left[i])
        img = img[:, t : t + 16, left : left + 16]
        img = img.flip(-1) if draws.flip[i] else img
        ref = v2.functional.normalize(v2.functional.to_dtype(img, torch.float32, scale=True), *spec.stats)
        torch.testing.assert_close(x[row], ref, rtol=1e-5, atol=1e-5)
        assert int(y[row]) == int(train.targets[item])


def test_the_test_split_on_the_device_equals_the_per_image_transform():
    _, test = _images(augment=False)
    data = DeviceImages.from_dataset(test, CPU)
    assert data.draws(torch.Generator()) is None  # no augmentation on a test split
    x, y = next(data.batches(64))
    expected = torch.stack([test[i][0] for i in range(len(test))])
    torch.testing.assert_close(x, expected, rtol=1e-5, atol=1e-5)
    assert y.tolist() == test.targets.tolist()


def test_cifar_files_are_held_on_the_device_in_channel_order(tmp_path, skip_checksums):
    write_cifar_files(tmp_path, hundred=False)
    bundle = load_data("cifar10", data_root=str(tmp_path), input_size=(32, 32))
    assert why_not_resident(bundle.test) is None
    x, _ = next(DeviceImages.from_dataset(bundle.test, CPU).batches(8))
    torch.testing.assert_close(x, torch.stack([bundle.test[i][0] for i in range(len(bundle.test))]))


def test_device_data_on_for_a_dataset_it_cannot_hold_is_one_clear_error():
    python_data = TensorDataset(torch.zeros(4, 1, 8, 8), torch.zeros(4, dtype=torch.long))
    assert resident(python_data, "auto", CPU) is None  # auto: falls back to the loader
    with pytest.raises(AutoscError, match="--device-data on cannot hold this split.*use --device-data auto"):
        resident(python_data, "on", CPU)


def _trainer(device_data: str, epochs: int = 2, lr: float = 0.05) -> Trainer:
    torch.manual_seed(0)
    train, test = _images(n=48)
    plan = autosc.plan("mobilenet_v2_cifar", budget="1.5M", input_size=(16, 16), width=0.35, num_classes=4,
                     in_channels=1)  # fmt: skip
    config = TrainConfig(epochs=epochs, batch_size=8, lr=lr, weight_decay=5e-4, alpha_lr=0.2, device_data=device_data)
    return Trainer(plan.network, train, test, config)


@pytest.mark.slow
def test_the_epochs_batches_are_the_same_from_a_fresh_trainer_and_after_a_skip():
    first, second = _trainer("on"), _trainer("on")
    assert first.data is not None
    first.epoch = second.epoch = 1
    whole = list(first.epoch_batches())
    resumed = list(second.epoch_batches(skip=3))
    assert len(whole) == first.batches_per_epoch and len(resumed) == len(whole) - 3
    for (xa, ya), (xb, yb) in zip(whole[3:], resumed, strict=True):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    # and the loader path reads the same images in the same batches (the order is the sampler's in both)
    loader = _trainer("off")
    loader.epoch = 1
    for (_, ya), (_, yb) in zip(whole, loader.epoch_batches(), strict=True):
        assert torch.equal(ya, yb)


@pytest.mark.parametrize("device_data", ["on", "off"])
@pytest.mark.slow
def test_a_run_stopped_mid_epoch_resumes_to_the_same_metrics(device_data):
    reference = _trainer(device_data)
    while not reference.finished:
        reference.run_epoch({"stop": False})
    stopped = _trainer(device_data)
    stop = {"stop": False}

    def stop_at_batch_2(t):
        stop["stop"] = t.epoch == 1 and t.batch == 2

    stopped.run_epoch(stop)
    with pytest.raises(StopRequested):  # what the loop saves the state on, at this batch boundary
        stopped.run_epoch(stop, on_batch=stop_at_batch_2)
    state = stopped.state_dict()
    weights = {k: v.clone() for k, v in stopped.net.state_dict().items()}
    resumed = _trainer(device_data)
    resumed.net.load_state_dict(weights)
    resumed.load_state_dict(state)
    assert (resumed.epoch, resumed.batch) == (1, 2)
    resumed.run_epoch({"stop": False})
    for a, b in zip(reference.history, resumed.history, strict=True):
        for key in ("train_loss", "train_acc", "test_loss", "test_acc"):
            assert a[key] == pytest.approx(b[key], rel=1e-6, abs=1e-7), key
        assert a["sizes"] == b["sizes"]


@pytest.mark.parametrize("device_data", ["on", "off"])
@pytest.mark.slow
def test_a_non_finite_loss_stops_before_anything_is_saved(device_data):
    trainer = _trainer(device_data, epochs=1)
    with torch.no_grad():
        for p in trainer.net.weight_parameters():
            p.mul_(1e30)
    for group in trainer.weight_opt.param_groups:
        group["lr"] = 1e38
    with pytest.raises(AutoscError, match=r"the loss became (nan|inf) in epoch 1, batch \d+.*last good checkpoint"):
        trainer.run_epoch({"stop": False})
    assert trainer.history == [] and trainer.epoch == 0  # no metrics row, nothing for a save to write


@pytest.mark.slow
def test_evaluation_on_the_device_equals_the_loader():
    trainer = _trainer("on", epochs=1)
    trainer.run_epoch({"stop": False})
    net = trainer.net.eval()
    on_device = evaluate(net, DeviceImages.from_dataset(trainer.test_set, CPU), batch_size=16)
    by_loader = evaluate(net, trainer.test_set, batch_size=16)
    assert on_device == pytest.approx(by_loader, rel=1e-5)
    assert trainer.history[0]["test_acc"] == pytest.approx(by_loader[1])


@pytest.mark.slow
def test_the_shape_is_projected_after_alpha_updates_only():
    trainer = _trainer("on", epochs=1)
    net = trainer.net
    calls = []
    original = net.update_shape

    def counted():
        calls.append(trainer.step)
        return original()

    net.update_shape = counted
    trainer.run_epoch({"stop": False})
    updates = trainer.shape_steps // trainer.alpha_step  # alpha updates in the shape phase of this one epoch
    # one projection on entering the held shape, one per alpha update, one for the epoch's metrics
    assert len(calls) == updates + 2
    assert trainer.history[0]["alpha_moved"] > 0  # the alphas did learn, and their sizes came from those calls


@pytest.mark.slow
def test_compile_applies_once_the_shape_is_fixed_and_again_on_resume(monkeypatch):
    compiled = []

    def fake_compile(model):  # compiling for real takes minutes on a CPU; what is tested is when it happens
        compiled.append(model)
        return model

    monkeypatch.setattr(torch, "compile", fake_compile)
    trainer = _trainer("on", epochs=2)
    trainer.config.compile = True
    seen = []
    trainer.run_epoch({"stop": False}, on_batch=lambda t: seen.append((t.step, len(compiled))))
    assert [n for step, n in seen if step < trainer.shape_steps] == [0] * (trainer.shape_steps - 1)
    assert all(n == 1 for step, n in seen if step >= trainer.shape_steps)  # once, when the shape became fixed
    assert compiled[0] is trainer.net and trainer.net.collapsed  # the collapsed network, as it trains from now
    resumed = _trainer("on", epochs=2)
    resumed.config.compile = True
    resumed.load_state_dict(trainer.state_dict())
    assert len(compiled) == 2  # a run resumed past the shape phase compiles again


def test_a_small_image_folder_is_decoded_once_at_the_input_size(tmp_path):
    from PIL import Image

    for split in ("train", "val"):
        for c, name in enumerate(["cat", "dog"]):
            (tmp_path / split / name).mkdir(parents=True)
            for j in range(3):  # images of different sizes: each is resized on its own, as the per-item path does
                pixels = torch.randint(0, 256, (20 + 3 * j, 26 - 2 * j, 3), dtype=torch.uint8).numpy()
                Image.fromarray(pixels).save(tmp_path / split / name / f"{c}{j}.png")
    bundle = load_data(f"imagefolder:{tmp_path}", input_size=(16, 16))
    assert why_not_resident(bundle.train) is None and why_not_resident(bundle.test) is None
    x, y = next(DeviceImages.from_dataset(bundle.test, CPU).batches(16))
    torch.testing.assert_close(x, torch.stack([bundle.test[i][0] for i in range(len(bundle.test))]))
    assert y.tolist() == [label for _, label in bundle.test.samples]
    large = load_data(f"imagefolder:{tmp_path}", input_size=(64, 64))  # a random resized crop runs per item
    assert "random resized crop" in why_not_resident(large.train) and why_not_resident(large.test) is None
