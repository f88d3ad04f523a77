"""Stopping on SIGINT/SIGTERM where a run has no batch boundary inside an epoch, or none at all (issue 28)."""

import os
import signal

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from autosc.train import TrainConfig, Trainer, train
from autosc.train.runtime import Stopped, stop_at_once


def _trainer(epochs: int = 4) -> Trainer:
    """A plain network on 8 images in one batch of 8: every epoch is a single batch."""
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    data = TensorDataset(torch.randn(8, 1, 8, 8, generator=g), torch.randint(0, 3, (8,), generator=g))
    net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(144, 3))
    config = TrainConfig(epochs=epochs, batch_size=8, lr=0.05, weight_decay=5e-4, device="cpu", device_data="off")
    return Trainer(net, data, data, config)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_between_one_batch_epochs_stops_the_run_and_it_resumes_to_the_same_result(sig):
    reference = _trainer()
    assert reference.batches_per_epoch == 1
    assert train(reference, save=lambda t: None)
    saved = {}

    def save(t: Trainer) -> None:
        saved.update(state=t.state_dict(), weights={k: v.clone() for k, v in t.net.state_dict().items()})

    def signal_after_epoch_1(t: Trainer, row: dict) -> None:
        if t.epoch == 1:
            os.kill(os.getpid(), sig)  # what a scheduler (SIGTERM) or a person (Ctrl-C) sends

    stopped, before = _trainer(), signal.getsignal(sig)
    assert not train(stopped, save=save, on_epoch=signal_after_epoch_1)
    assert (stopped.epoch, stopped.stop_signal, saved["state"]["epoch"]) == (1, sig, 1)  # exit 128 + sig
    assert signal.getsignal(sig) is before  # the handlers are the caller's again
    resumed = _trainer()
    resumed.net.load_state_dict(saved["weights"])
    resumed.load_state_dict(saved["state"])
    assert train(resumed, save=lambda t: None) and resumed.epoch == 4
    for a, b in zip(reference.history, resumed.history, strict=True):
        for key in ("train_loss", "train_acc", "test_loss", "test_acc"):
            assert a[key] == pytest.approx(b[key], rel=1e-6, abs=1e-7), key
    for key, value in reference.net.state_dict().items():
        torch.testing.assert_close(resumed.net.state_dict()[key], value, rtol=1e-6, atol=1e-7)


def test_a_signal_after_the_last_epoch_still_stops_before_the_export():
    trainer = _trainer(epochs=1)

    def signal_now(t: Trainer, row: dict) -> None:
        os.kill(os.getpid(), signal.SIGTERM)

    assert not train(trainer, save=lambda t: None, on_epoch=signal_now)
    assert trainer.finished and trainer.stop_signal == signal.SIGTERM  # --resume goes straight to the export


def test_stop_at_once_raises_where_the_code_is_once_and_restores_the_handlers():
    before = signal.getsignal(signal.SIGTERM)
    reached = []
    with pytest.raises(Stopped) as stopped, stop_at_once():
        os.kill(os.getpid(), signal.SIGTERM)
        reached.append("after the signal")  # never: it raises at once
    assert stopped.value.signum == signal.SIGTERM and not reached
    assert signal.getsignal(signal.SIGTERM) is before
    with stop_at_once():  # a repeated signal is ignored while the first one's clean-up runs
        with pytest.raises(Stopped):
            os.kill(os.getpid(), signal.SIGINT)
        os.kill(os.getpid(), signal.SIGTERM)
