"""Input a user gives from Python or in a file, refused as one AutoscError naming what is wrong (issue 28), where
it used to be a torch error from deep inside training."""

import pytest
import torch
from torch import nn
from torch.utils.data import Dataset, TensorDataset

import autosc
from autosc.data import from_datasets
from autosc.errors import AutoscError
from autosc.models import build_model
from autosc.models.trained import read_weights
from autosc.train.runtime import check_compiler


class Images(Dataset):
    """``n`` images of ``shape`` with the given labels (any type, as a user's dataset may return)."""

    def __init__(self, labels: list, shape: tuple[int, ...] = (1, 8, 8), odd: dict[int, tuple] | None = None) -> None:
        self.labels, self.shape, self.odd = labels, shape, odd or {}

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i):
        return torch.zeros(self.odd.get(i, self.shape)), self.labels[i]


def _tensors(labels: torch.Tensor) -> TensorDataset:
    return TensorDataset(torch.zeros(len(labels), 1, 8, 8), labels)


@pytest.mark.parametrize(
    ("train", "fragment"),
    [
        (Images([0, 1, 2.0, 1]), "item 2's label is 2.0 (float)"),
        (Images(["cat", "dog", "cat", "dog"]), "item 0's label is 'cat' (str)"),
        (_tensors(torch.tensor([0.0, 1.0, 1.0, 0.0])), "item 0's label is tensor(0.)"),
        (Images([0, 1, 0, 1] * 10, odd={21: (1, 9, 8)}), "item 0 is (1, 8, 8), item 21 is (1, 9, 8)"),
    ],
    ids=["float label", "text label", "float targets", "mixed sizes"],
)
def test_python_data_a_training_batch_cannot_use_is_one_line(train, fragment):
    with pytest.raises(AutoscError, match="train_data") as refused:
        from_datasets(train, Images([0, 1]))
    assert fragment in str(refused.value) and "\n" not in str(refused.value)


def test_labels_out_of_the_given_classes_are_refused():
    with pytest.raises(AutoscError, match=r"train_data labels must be 0 .. 1 \(2 classes\), found 0 .. 5"):
        from_datasets(_tensors(torch.tensor([0, 5, 1])), Images([0, 1]), num_classes=2)


class ThreeChannels(nn.Module):
    def __init__(self, classes: int = 3) -> None:
        super().__init__()
        self.conv, self.head = nn.Conv2d(3, 4, 3, padding=1), nn.Linear(4, classes)

    def forward(self, x):
        return self.head(self.conv(x).mean((2, 3)))


@pytest.mark.parametrize(
    ("channels", "labels", "fragment"),
    [(1, [0, 1, 2, 1], "cannot run on a 1x8x8 input"), (3, [0, 1, 2, 3], "the data has 4 classes")],
    ids=["1-channel data for a 3-channel network", "labels beyond its outputs"],
)
def test_a_module_instance_that_does_not_fit_the_data_is_refused_before_it_runs(tmp_path, channels, labels, fragment):
    data = Images(labels * 4, shape=(channels, 8, 8))
    with pytest.raises(AutoscError, match=fragment):
        autosc.compress(ThreeChannels(), train_data=data, test_data=data, budget="60%", out=tmp_path / "run",
                        quiet=True)  # fmt: skip
    assert not (tmp_path / "run").exists()


def test_sparse_weights_are_one_line_saying_how_to_save_them_dense(tmp_path):
    state = build_model("resnet18_cifar", width=0.25).state_dict()
    state["fc.weight"] = state["fc.weight"].to_sparse()
    torch.save(state, tmp_path / "w.pt")
    with pytest.raises(AutoscError, match=r"holds sparse tensors \(fc.weight\).*to_dense"):
        read_weights(tmp_path / "w.pt")


@pytest.mark.parametrize("device", ["cpu", "cuda"])
def test_compile_without_a_compiler_is_refused(tmp_path, monkeypatch, device):
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty folder: no compiler on it
    monkeypatch.delenv("CXX", raising=False)
    monkeypatch.delenv("CC", raising=False)
    with pytest.raises(AutoscError, match="--compile needs a C"):
        check_compiler(torch.device(device))
    monkeypatch.setenv("CXX" if device == "cpu" else "CC", "/nonexistent/cc")
    with pytest.raises(AutoscError, match=r"\(/nonexistent/cc\), and it is not on PATH"):
        check_compiler(torch.device(device))
