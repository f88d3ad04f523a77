"""Issue 18, item 4: AutoTL (``autosc transfer``) against plain fine-tuning of the same trained network.

The trained network is the human ``mobilenet_v2_cifar`` (width 1) trained on Fashion-MNIST by
``benchmarks/trained_peers.py: train_teacher`` with ``benchmarks/trained.py``'s settings (8,000 images, 6 epochs,
lr 0.05, seed 12; cached under ``results/teachers/``). The new task is scikit-learn's bundled handwritten digits
(``sklearn.datasets.load_digits``: 1,797 real 8x8 scans, 16 grey levels), upsampled bilinearly to the source's
28x28, one channel, standardised with the training split's mean and spread, split once (seeded) into 1,197
training and 600 test images, the same for every run.

Both arms start from the trained network with a fresh 10-class classifier drawn from the run's seed (the same
head in both) and fine-tune with the same recipe (epochs, lr, batch, seed; no distillation, no validation split):

- ``autotl``: :func:`autosc.transfer`: each human resize (``features.4``, ``.7``, ``.14``) becomes a standard
  shape adaptor at s = 0.55, weights and shapes learn together (the shape for the first half, then collapsed),
  no budget; frozen, evaluated frozen.
- ``plain``: the trained network as it is, fine-tuned by the same trainer.

Every run appends one JSON line (test accuracy, MACs, params, learned sizes and factors, seconds) as soon as it
ends; a stopped run resumes where it stopped. ``--summary`` prints the paired table from the file alone.

    python -m benchmarks.transfer                  # 5 seeds, both arms (CPU, about 20 minutes)
    python -m benchmarks.transfer --summary
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import TensorDataset

import autosc
from autosc import RunConfig, count
from autosc.models.trained import load_start
from autosc.run.stages import load_dataset
from autosc.train import Trainer, train
from autosc.train.evaluate import evaluate
from benchmarks.runner import add_out, ints, load_rows, paired, parser, quiet, run_grid, trained_to_end
from benchmarks.trained_peers import TEACHER, train_teacher

SIZE = (28, 28)  # the source's input size (Fashion-MNIST's native size)
TEST_IMAGES = 600
SPLIT_SEED = 0  # the one train/test split of the digits


def arguments():
    ap = parser(__doc__)
    ap.add_argument("--seeds", default="20,21,22,23,24", help="fine-tuning seeds (0-17 were used by other studies)")
    ap.add_argument("--arms", default="plain,autotl")
    ap.add_argument("--epochs", type=int, default=10, help="fine-tuning epochs of both arms")
    ap.add_argument("--lr", type=float, default=0.01, help="fine-tuning learning rate of both arms")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--init-factor", type=float, default=0.55, help="AutoTL's start factor (the seed paper's)")
    ap.add_argument("--teacher-subset", type=int, default=8000)
    ap.add_argument("--teacher-epochs", type=int, default=6)
    ap.add_argument("--teacher-lr", type=float, default=0.05)
    ap.add_argument("--teacher-seed", type=int, default=12)
    ap.add_argument("--threads", type=int, default=2)
    add_out(ap, "transfer.jsonl")
    return ap


def digits() -> tuple[TensorDataset, TensorDataset]:
    """scikit-learn's digits at 28x28, standardised by the training split, in one seeded split."""
    from sklearn.datasets import load_digits

    data = load_digits()
    x = torch.tensor(data.images, dtype=torch.float32).unsqueeze(1) / 16.0
    x = F.interpolate(x, size=SIZE, mode="bilinear", align_corners=False)
    y = torch.tensor(data.target, dtype=torch.long)
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(SPLIT_SEED))
    test, train_ = order[:TEST_IMAGES], order[TEST_IMAGES:]
    mean, std = x[train_].mean(), x[train_].std()
    x = (x - mean) / std
    return TensorDataset(x[train_], y[train_]), TensorDataset(x[test], y[test])


def source_network(args, cache: Path) -> tuple[Path, dict]:
    """The trained network's weights file and record (trained once, then read from ``teachers/``)."""
    config = RunConfig.from_flat({"model": TEACHER, "data": "fashion-mnist", "subset": args.teacher_subset,
                                  "test_subset": 2000, "seed": args.teacher_seed, "val_split": 0.1})  # fmt: skip
    bundle = load_dataset(config, SIZE)
    _, record = train_teacher(
        bundle, epochs=args.teacher_epochs, seed=args.teacher_seed, cache_dir=cache, lr=args.teacher_lr,
        batch_size=128,
    )  # fmt: skip
    return cache / record["weights"], record


def options(args, seed: int) -> dict:
    """The fine-tuning recipe both arms share (autosc's option names)."""
    return {"epochs": args.epochs, "lr": args.lr, "batch_size": args.batch_size, "seed": seed,
            "val_split": 0.0, "distill": False, "device": "cpu"}  # fmt: skip


def run_autotl(args, seed: int, weights: Path, train_set, test_set) -> dict:
    with tempfile.TemporaryDirectory() as tmp, quiet():
        result = autosc.transfer(
            TEACHER, weights=weights, train_data=train_set, test_data=test_set, out=Path(tmp) / "run",
            init_factor=args.init_factor, latency_runs=50, quiet=True, **options(args, seed),
        )  # fmt: skip
        report = json.loads((result.run_dir / "report.json").read_text())
    return {
        "accuracy": report["accuracy"]["final"],
        "macs": report["macs"]["final"],
        "resize_macs": report["macs"]["final_resize"],
        "params": report["params"]["final"],
        "human_macs": report["macs"]["human"],
        "sizes": [a["size"] for a in report["adaptors"]],
        "human_sizes": [a["human_size"] for a in report["adaptors"]],
        "factors": [a["s"] for a in report["adaptors"]],
        "p50_ms": report["latency_ms"]["compressed"]["p50"],
        "human_p50_ms": report["latency_ms"]["human"]["p50"],
    }


def run_plain(args, seed: int, weights: Path, train_set, test_set) -> dict:
    start = load_start(TEACHER, weights=weights, num_classes=10, in_channels=1, new_head=True, seed=seed)
    config = RunConfig.from_flat({"model": TEACHER, **options(args, seed)})
    recipe = config.train.resolve(TEACHER, SIZE, trained=True)
    torch.manual_seed(seed)
    net = start.build()
    trainer = Trainer(net, train_set, test_set, recipe)
    train(trainer, save=lambda _: None)
    trained_to_end(trainer)  # a stopped run (stop_signal set) ends the grid without a row
    _, acc = evaluate(net.eval(), test_set)
    cost = count(net, SIZE, cells=False)
    return {"accuracy": acc, "macs": cost.macs, "resize_macs": 0, "params": cost.params}


ARMS = {"plain": run_plain, "autotl": run_autotl}


def summarise(rows: list[dict]) -> str:
    """Mean ± std per arm, and the seed-by-seed pairs autotl - plain with their standard error."""
    lines = ["| arm | seeds | top-1 % (mean ± std) | MACs + resize | params |", "|---|---|---|---|---|"]
    for arm in ARMS:
        got = [r for r in rows if r["arm"] == arm]
        if not got:
            continue
        accs = [100 * r["accuracy"] for r in got]
        spread = statistics.stdev(accs) if len(accs) > 1 else 0.0
        macs = statistics.mean(r["macs"] for r in got) / 1e6
        resize = statistics.mean(r["resize_macs"] for r in got) / 1e6
        lines.append(f"| {arm} | {len(got)} | {statistics.mean(accs):.2f} ± {spread:.2f} | {macs:.2f}M + "
                     f"{resize:.2f}M | {got[0]['params'] / 1e6:.3f}M |")  # fmt: skip
    by = {(r["arm"], r["seed"]): r for r in rows}
    arm = {a: {s: 100 * r["accuracy"] for (b, s), r in by.items() if b == a} for a in ARMS}
    if (p := paired(arm["autotl"], arm["plain"])).n:
        lines.append("")
        lines.append(f"autotl - plain, seed by seed ({', '.join(map(str, p.seeds))}): "
                     f"{', '.join(f'{d:+.2f}' for d in p.diffs)}; mean {p.mean:+.2f} points, "
                     f"standard error {p.se:.2f}, ahead on {p.ahead} of {p.n}")  # fmt: skip
        for s in p.seeds:
            r = by[("autotl", s)]
            lines.append(f"seed {s}: learned sizes {r['sizes']} (human {r['human_sizes']}), "
                         f"s {[round(f, 3) for f in r['factors']]}")  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    args = arguments().parse_args(argv)
    out = Path(args.out)
    if args.summary:
        print(summarise(load_rows(out)))
        return
    torch.set_num_threads(args.threads)
    weights, record = source_network(args, out.parent / "teachers")
    print(f"trained network: {record['test_acc']:.2%} on Fashion-MNIST ({record['key']})", flush=True)
    train_set, test_set = digits()

    def run(job: dict) -> dict:
        started = time.perf_counter()
        row = ARMS[job["arm"]](args, job["seed"], weights, train_set, test_set)
        return {**row, "seconds": time.perf_counter() - started, "epochs": args.epochs, "lr": args.lr,
                "batch_size": args.batch_size, "teacher": record["key"]}  # fmt: skip

    jobs = [{"arm": arm, "seed": seed} for seed in ints(args.seeds) for arm in args.arms.split(",")]
    rows = run_grid(jobs, run, out, key=("arm", "seed"), describe=progress)
    print(summarise(rows))


def progress(row: dict) -> str:
    return f"{row['arm']} seed {row['seed']}: {row['accuracy']:.2%} ({row['seconds']:.0f} s)"


if __name__ == "__main__":
    main()
