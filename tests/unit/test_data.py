"""Datasets: every loader on tiny fake data written here in the real on-disk layouts (no downloads, no system data)."""

import gzip
import struct

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image
from torch.utils.data import DataLoader

from autosc import AutoscError
from autosc.data import DATASETS, load_data, register_source, registry
from autosc.data import fashion_mnist as fashion_mnist_source

from ..helpers import write_cifar_files

FASHION_MEAN, FASHION_STD = 0.2860, 0.3530


# ---------------------------------------------------------------------------------------------- fake files


def _write_idx(path, array: np.ndarray, gz: bool) -> None:
    header = bytes([0, 0, 8, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + array.astype(np.uint8).tobytes()
    if gz:
        with gzip.open(f"{path}.gz", "wb") as f:
            f.write(payload)
    else:
        path.write_bytes(payload)


def _fashion_files(folder, n_train=20, n_test=10, gz_train=True, gz_test=False) -> None:
    """Image i is a flat grey of value 10 * i, label i % 10: the expected tensor is known exactly."""
    folder.mkdir(parents=True, exist_ok=True)
    for prefix, n, gz in (("train", n_train, gz_train), ("t10k", n_test, gz_test)):
        images = np.repeat((10 * np.arange(n)).reshape(n, 1, 1), 28 * 28, axis=1).reshape(n, 28, 28)
        _write_idx(folder / f"{prefix}-images-idx3-ubyte", images, gz)
        _write_idx(folder / f"{prefix}-labels-idx1-ubyte", np.arange(n) % 10, gz)


@pytest.fixture
def no_system_data(tmp_path, monkeypatch):
    """Hide Debian's Fashion-MNIST so the tests behave the same on machines with and without it."""
    monkeypatch.setattr(fashion_mnist_source, "SYSTEM_FASHION_MNIST", tmp_path / "no-system-data")


@pytest.fixture
def fashion_root(tmp_path, no_system_data):
    root = tmp_path / "fashion"
    _fashion_files(root)
    return root


def _image_tree(root, classes=("cat", "dog", "fox"), train=3, val=2) -> None:
    rng = np.random.default_rng(0)
    for split, n in (("train", train), ("val", val)):
        for c in classes:
            (root / split / c).mkdir(parents=True)
            for i in range(n):
                size = (20 + 3 * i, 30)  # varied sizes, one grey image: every one must come out RGB at input size
                pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
                image = Image.fromarray(pixels).convert("L" if i == 0 else "RGB")
                image.save(root / split / c / f"{i}.png")


def _one_line_error(excinfo, *fragments: str) -> None:
    message = str(excinfo.value)
    assert "\n" not in message, message
    for fragment in fragments:
        assert fragment in message, (fragment, message)


# ---------------------------------------------------------------------------------------------- fashion-mnist


@pytest.mark.parametrize("size", [(32, 32), (24, 40), (64, 72)])
def test_fashion_mnist_from_data_root(fashion_root, size):
    bundle = load_data("fashion-mnist", input_size=size, data_root=str(fashion_root))
    assert (bundle.name, bundle.num_classes, bundle.channels, bundle.native_size) == ("fashion-mnist", 10, 1, (28, 28))
    assert (len(bundle.train), len(bundle.test)) == (20, 10)
    assert bundle.source == str(fashion_root)
    for split in (bundle.train, bundle.test):
        x, y = split[3]
        assert x.shape == (1, *size) and x.dtype == torch.float32
        assert type(x) is torch.Tensor and isinstance(y, int) and y == 3
    # the test transform is deterministic and normalises with Fashion-MNIST's statistics: a flat 30 stays flat
    x, _ = bundle.test[3]
    torch.testing.assert_close(x, torch.full((1, *size), (30 / 255 - FASHION_MEAN) / FASHION_STD))
    torch.testing.assert_close(bundle.test[3][0], x)


def test_fashion_mnist_torchvision_raw_layout_all_gzipped(tmp_path, no_system_data):
    _fashion_files(tmp_path / "FashionMNIST" / "raw", gz_train=True, gz_test=True)
    bundle = load_data("fashion-mnist", input_size=(32, 32), data_root=str(tmp_path))
    assert (len(bundle.train), len(bundle.test)) == (20, 10)
    assert bundle.source == str(tmp_path / "FashionMNIST" / "raw")


def test_fashion_mnist_batches_through_a_dataloader(fashion_root):
    bundle = load_data("fashion-mnist", input_size=(32, 32), data_root=str(fashion_root))
    x, y = next(iter(DataLoader(bundle.train, batch_size=8, shuffle=True)))
    assert x.shape == (8, 1, 32, 32) and y.dtype == torch.int64


def test_augment_false_gives_train_the_test_transform(fashion_root):
    plain = load_data("fashion-mnist", input_size=(32, 32), data_root=str(fashion_root), augment=False)
    torch.testing.assert_close(plain.train[5][0], plain.train[5][0])
    augmented = load_data("fashion-mnist", input_size=(32, 32), data_root=str(fashion_root))
    # padded random crops of a flat image put black borders in some draws; the test transform never does
    torch.manual_seed(0)
    draws = torch.stack([augmented.train[5][0] for _ in range(20)])
    assert draws.shape == (20, 1, 32, 32)
    assert not all(torch.equal(d, plain.train[5][0]) for d in draws)


def test_subsets_are_seeded(fashion_root):
    def load(seed, n=5):
        return load_data(
            "fashion-mnist", input_size=(32, 32), data_root=str(fashion_root), subset=n, test_subset=3, seed=seed
        )

    a, b, c = load(0), load(0), load(1)
    assert (len(a.train), len(a.test)) == (5, 3)
    assert a.train.indices == b.train.indices and a.test.indices == b.test.indices
    assert a.train.indices != c.train.indices
    assert len(set(a.train.indices)) == 5
    assert [a.train[i][1] for i in range(5)] == [j % 10 for j in a.train.indices]
    assert f"{a.name}: 5 train / 3 test images, 10 classes, 1 channel" in a.describe()


@pytest.mark.parametrize(("option", "value"), [("subset", 0), ("subset", 21), ("test_subset", 11), ("subset", -3)])
def test_subset_out_of_range(fashion_root, option, value):
    with pytest.raises(AutoscError) as excinfo:
        load_data("fashion-mnist", input_size=(32, 32), data_root=str(fashion_root), **{option: value})
    total = 20 if option == "subset" else 10
    _one_line_error(excinfo, option, f"1 to {total}", str(value))


def test_fashion_mnist_missing_says_how_to_get_it(tmp_path, no_system_data):
    with pytest.raises(AutoscError) as excinfo:
        load_data("fashion-mnist", input_size=(32, 32), data_root=str(tmp_path))
    _one_line_error(excinfo, "apt-get install dataset-fashion-mnist", "--data-root", "--download")
    with pytest.raises(AutoscError) as excinfo:
        load_data("fashion-mnist", input_size=(32, 32))
    _one_line_error(excinfo, "apt-get install dataset-fashion-mnist")


def test_fashion_mnist_truncated_file(fashion_root):
    path = fashion_root / "t10k-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-5])
    with pytest.raises(AutoscError) as excinfo:
        load_data("fashion-mnist", input_size=(32, 32), data_root=str(fashion_root))
    _one_line_error(excinfo, str(path), "truncated")


# ---------------------------------------------------------------------------------------------- torchvision sets


@pytest.mark.parametrize(("name", "classes"), [("cifar10", 10), ("cifar100", 100)])
@pytest.mark.parametrize("size", [(32, 32), (24, 40), (64, 64)])
def test_cifar_layouts(tmp_path, skip_checksums, name, classes, size):
    write_cifar_files(tmp_path, hundred=name == "cifar100")
    bundle = load_data(name, input_size=size, data_root=str(tmp_path))
    assert (bundle.num_classes, bundle.channels, bundle.native_size) == (classes, 3, (32, 32))
    assert (len(bundle.train), len(bundle.test)) == ((20, 4) if name == "cifar10" else (4, 4))
    for split in (bundle.train, bundle.test):
        x, y = split[0]
        assert x.shape == (3, *size) and x.dtype == torch.float32
        assert isinstance(y, int) and 0 <= y < classes


def test_cifar_pointing_at_the_unpacked_folder_works(tmp_path, skip_checksums):
    write_cifar_files(tmp_path, hundred=False)
    bundle = load_data("cifar10", input_size=(32, 32), data_root=str(tmp_path / "cifar-10-batches-py"))
    assert bundle.source == str(tmp_path / "cifar-10-batches-py")


def test_cifar_failing_checksum_is_one_line(tmp_path):
    write_cifar_files(tmp_path, hundred=False)  # real torchvision md5 check: the fake files fail it
    with pytest.raises(AutoscError) as excinfo:
        load_data("cifar10", input_size=(32, 32), data_root=str(tmp_path))
    _one_line_error(excinfo, "checksum", "--download")


@pytest.mark.parametrize("name", ["cifar10", "cifar100", "svhn"])
def test_missing_root(tmp_path, name):
    with pytest.raises(AutoscError) as excinfo:
        load_data(name, input_size=(32, 32))
    _one_line_error(excinfo, "--data-root", "--download")
    with pytest.raises(AutoscError) as excinfo:
        load_data(name, input_size=(32, 32), data_root=str(tmp_path / "nowhere"))
    expected = {"cifar10": "cifar-10-batches-py", "cifar100": "cifar-100-python", "svhn": "train_32x32.mat"}[name]
    _one_line_error(excinfo, expected, "--download", "nowhere")


def _svhn_files(root) -> None:
    import scipy.io

    rng = np.random.default_rng(0)
    for split, n in (("train", 6), ("test", 4)):
        x = rng.integers(0, 256, (32, 32, 3, n), dtype=np.uint8)
        y = np.array([[10], [1], [2], [3], [4], [5]][:n], dtype=np.uint8)  # SVHN stores digit 0 as 10
        scipy.io.savemat(root / f"{split}_32x32.mat", {"X": x, "y": y})


def test_svhn_layout(tmp_path, skip_checksums):
    _svhn_files(tmp_path)
    bundle = load_data("svhn", input_size=(32, 32), data_root=str(tmp_path))
    assert (len(bundle.train), len(bundle.test), bundle.num_classes, bundle.channels) == (6, 4, 10, 3)
    x, y = bundle.train[0]
    assert x.shape == (3, 32, 32) and y == 0
    assert not any(
        isinstance(t, torchvision.transforms.v2.RandomHorizontalFlip) for t in bundle.train.transform.transforms
    )


# ---------------------------------------------------------------------------------------------- imagefolder


@pytest.mark.parametrize("size", [(40, 48), (64, 80)])
def test_imagefolder(tmp_path, size):
    _image_tree(tmp_path)
    bundle = load_data(f"imagefolder:{tmp_path}", input_size=size)
    assert (bundle.num_classes, bundle.channels, len(bundle.train), len(bundle.test)) == (3, 3, 9, 6)
    assert bundle.name == f"imagefolder:{tmp_path.resolve()}" and bundle.native_size == (30, 20)
    for split in (bundle.train, bundle.test):
        for i in (0, 1):  # a grey and a colour PNG
            x, y = split[i]
            assert x.shape == (3, *size) and x.dtype == torch.float32 and y == 0
    assert bundle.test[-1][1] == 2


def _tree_without_val(root):
    _image_tree(root)
    for path in sorted((root / "val").rglob("*"), reverse=True):
        path.unlink() if path.is_file() else path.rmdir()
    (root / "val").rmdir()


def _tree_with_empty_train(root):
    (root / "train").mkdir()
    (root / "val").mkdir()


def _tree_with_empty_class(root):
    _image_tree(root)
    (root / "train" / "emu").mkdir()


def _tree_with_one_class(root):
    _image_tree(root, classes=("cat",))


def _tree_with_other_val_classes(root):
    _image_tree(root)
    (root / "val" / "fox").rename(root / "val" / "owl")


@pytest.mark.parametrize(
    ("make", "fragment"),
    [
        (None, "does not exist"),
        (_tree_without_val, "no val/ folder"),
        (_tree_with_empty_train, "no images"),
        (_tree_with_empty_class, "emu"),
        (_tree_with_one_class, "only one class"),
        (_tree_with_other_val_classes, "owl"),
    ],
)
def test_imagefolder_errors(tmp_path, make, fragment):
    root = tmp_path / "set"
    if make is not None:
        root.mkdir()
        make(root)
    with pytest.raises(AutoscError) as excinfo:
        load_data(f"imagefolder:{root}", input_size=(32, 32))
    _one_line_error(excinfo, fragment)


# ---------------------------------------------------------------------------------------------- synthetic


def _stack(split) -> tuple[torch.Tensor, torch.Tensor]:
    xs, ys = zip(*(split[i] for i in range(len(split))), strict=True)
    return torch.stack(xs), torch.tensor(ys)


def test_synthetic_is_deterministic_per_seed():
    a, b, c = (load_data("synthetic", input_size=(24, 40), seed=s) for s in (7, 7, 8))
    assert (len(a.train), len(a.test), a.num_classes, a.channels, a.native_size) == (512, 128, 10, 3, (24, 40))
    assert a.source == "synthetic"
    for i in (0, 100):
        assert torch.equal(a.train[i][0], b.train[i][0]) and a.train[i][1] == b.train[i][1]
    assert not torch.equal(a.train[0][0], c.train[0][0])
    x, y = a.test[0]
    assert x.shape == (3, 24, 40) and x.dtype == torch.float32 and isinstance(y, int)


def test_synthetic_is_learnable_but_not_trivial():
    bundle = load_data("synthetic", input_size=(32, 32), seed=0)
    train_x, train_y = _stack(bundle.train)
    test_x, test_y = _stack(bundle.test)
    assert torch.bincount(train_y).tolist() == [52] * 2 + [51] * 8  # balanced classes
    assert abs(train_x.mean()) < 1 and 0.5 < train_x.std() < 2  # normalised
    means = torch.stack([train_x[train_y == k].mean(0) for k in range(10)]).flatten(1)
    predicted = torch.cdist(test_x.flatten(1), means).argmin(1)
    assert (predicted == test_y).float().mean() > 0.6  # chance is 0.1
    # one pixel alone is a poor guide: the classes overlap pixel by pixel, so the network must pool
    pixel = train_x[:, 0, 16, 16]
    centre = torch.stack([pixel[train_y == k].mean() for k in range(10)])
    assert ((pixel[:, None] - centre).abs().argmin(1) == train_y).float().mean() < 0.5


# ---------------------------------------------------------------------------------------------- names and sizes


@pytest.mark.parametrize(("name", "suggestion"), [("cifar-10", "cifar10"), ("fashionmnist", "fashion-mnist")])
def test_unknown_name_suggests(name, suggestion):
    with pytest.raises(AutoscError) as excinfo:
        load_data(name, input_size=(32, 32))
    _one_line_error(excinfo, f"did you mean {suggestion!r}", *DATASETS)


def test_imagefolder_without_path():
    with pytest.raises(AutoscError) as excinfo:
        load_data("imagefolder", input_size=(32, 32))
    _one_line_error(excinfo, "imagefolder:PATH")


def test_name_spelling_variants(fashion_root):
    bundle = load_data("Fashion_MNIST", input_size=(32, 32), data_root=str(fashion_root))
    assert bundle.name == "fashion-mnist"


@pytest.mark.parametrize("size", [32, (32,), (0, 32), (32.0, 32), (True, 32)])
def test_bad_input_size(size):
    with pytest.raises(AutoscError) as excinfo:
        load_data("synthetic", input_size=size)
    _one_line_error(excinfo, "input_size")


# ---------------------------------------------------------------------------------------------- the registry


@pytest.fixture
def scratch_registry(monkeypatch):
    """A copy of the table, so a source registered by a test is gone after it."""
    monkeypatch.setattr(registry, "_SOURCES", dict(registry._SOURCES))


def test_datasets_are_the_registry():
    assert registry.dataset_names() == DATASETS
    assert DATASETS == ("fashion-mnist", "cifar10", "cifar100", "svhn", "imagefolder:PATH", "synthetic")


def test_a_name_is_registered_once(scratch_registry):
    with pytest.raises(ValueError, match="already registered"):
        register_source("cifar10")(lambda request: None)
    with pytest.raises(ValueError, match="lower case"):
        register_source("My_Set")(lambda request: None)


def test_a_registered_source_loads_by_name_with_its_argument(scratch_registry):
    seen = []

    @register_source("echo", arg="N", usage="echo needs a number: echo:N")
    def echo(request):
        seen.append(request)
        return load_data("synthetic", input_size=request.size, seed=int(request.arg))

    bundle = load_data("Echo:4", input_size=(8, 8), subset=3)
    assert len(bundle.train) == 3 and seen[0].arg == "4" and seen[0].size == (8, 8)
    assert "echo:N" in registry.dataset_names()
    with pytest.raises(AutoscError) as excinfo:
        load_data("echo", input_size=(8, 8))
    _one_line_error(excinfo, "echo needs a number")
