"""Issue 19: the training loop's throughput as a ratio to what the hardware can do with the same network.

For each phase of a compress run, in one process and interleaved (loop, bare, loop, bare, ...):

- ``loop``: images/s of :class:`autosc.train.Trainer` training the planned network (the quality benchmark's
  model and budget), data read the way compress reads it, timed between batch ends from ``on_batch`` (the
  epoch's evaluation is not counted; the first batches warm up and are not counted either);
- ``bare``: images/s of forward + backward + SGD step of the same network on one pre-made batch already on the
  device (no data, no projection, no host reads): the limit the loop is measured against.

Phases: ``shape`` (alphas learning; shape_until 1, an alpha update at compress's default cadence for this run's
length) and ``fixed`` (the shape fixed after the first step and the adaptors collapsed, as compress's second
half). ``--parts`` also times, per step, what the loop does outside the network: reading one batch, the budget
projection, and one alpha update. Rows are appended to ``results/throughput.jsonl`` with ``--label`` (e.g.
before / after a change), device, precision and the machine, by :mod:`benchmarks.runner`: a label already
measured with the same device, precision and data path is skipped (name a new measurement with a new label).

    python -m benchmarks.throughput --label after                     # CPU, both phases
    python -m benchmarks.throughput --device cuda --amp bf16 --images 20000 --label gpu-bf16
    python -m benchmarks.throughput --summary
"""

from __future__ import annotations

import copy
import dataclasses
import statistics
import time

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Subset

from autosc import RunConfig
from autosc.run import input_size, load_dataset, plan_network
from autosc.train import Trainer, resolve_device
from benchmarks.runner import add_out, load_rows, parser, run_grid

PHASES = ("shape", "fixed")
WARM_BATCHES = 3  # batches not timed at the start of each measured epoch (allocator, oneDNN/cuDNN plans)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def loop_rate(config: RunConfig, bundle, phase: str, compile: bool = False) -> dict:
    """Images/s of the trainer's own loop over one epoch of ``bundle.train`` in ``phase`` (``compile``: with
    ``--compile``; the seconds of the first batches, which compile, are recorded as ``warmup_s``)."""
    torch.manual_seed(0)
    plan = plan_network(config, bundle, input_size(config))
    train = dataclasses.replace(config.train, shape_until=1.0 if phase == "shape" else 1e-9, compile=compile)
    started = time.perf_counter()
    trainer = Trainer(plan.network, bundle.train, Subset(bundle.test, range(8)), train)
    marks: list[float] = []

    def mark(t: Trainer) -> None:
        if t.batch in (WARM_BATCHES, t.batches_per_epoch - 1):  # the two ends of the timed stretch
            _sync(t.device)
        marks.append(time.perf_counter())

    trainer.run_epoch({"stop": False}, on_batch=mark)
    timed = marks[WARM_BATCHES - 1 : -1]  # from the end of the warm-up batches to the end of the last full batch
    steps = len(timed) - 1
    return {"images_per_s": steps * train.batch_size / (timed[-1] - timed[0]), "steps": steps,
            "warmup_s": timed[0] - started, "device": str(trainer.device)}  # fmt: skip


def _bare_network(config: RunConfig, bundle, phase: str) -> torch.nn.Module:
    """The planned network as the trainer runs it in ``phase``, without the budget wrapper: sizes fixed."""
    torch.manual_seed(0)
    plan = plan_network(config, bundle, input_size(config))
    budgeted = plan.network
    budgeted.update_shape()
    if phase == "fixed":
        budgeted.collapse()
    return copy.deepcopy(budgeted.net)


def bare_rate(config: RunConfig, bundle, phase: str, steps: int) -> dict:
    """Images/s of forward + backward + SGD step on one pre-made device batch: the limit of the loop."""
    t = config.train
    device = resolve_device(t.device)
    net = _bare_network(config, bundle, phase).to(device).train()
    x, _ = next(iter(DataLoader(bundle.train, batch_size=t.batch_size)))
    x = x.to(device)
    if t.channels_last:
        net = net.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, bundle.num_classes, (len(x),), device=device)
    opt = torch.optim.SGD(net.parameters(), lr=t.lr, momentum=t.momentum, nesterov=True, weight_decay=t.weight_decay)
    amp = (
        torch.autocast(device.type, dtype=torch.bfloat16 if t.amp == "bf16" else torch.float16)
        if t.amp != "off"
        else torch.autocast(device.type, enabled=False)
    )

    def step() -> None:
        with amp:
            out = net(x)
        loss = F.cross_entropy(out.float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(WARM_BATCHES):
        step()
    _sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    _sync(device)
    return {"images_per_s": steps * len(x) / (time.perf_counter() - start), "steps": steps}


def parts_ms(config: RunConfig, bundle, steps: int) -> dict:
    """Per step, what the loop does besides the network: one batch read, the projection, one alpha update."""
    torch.manual_seed(0)
    plan = plan_network(config, bundle, input_size(config))
    trainer = Trainer(plan.network, bundle.train, Subset(bundle.test, range(8)), config.train)
    out: dict = {}
    batches = trainer.epoch_batches()
    start = time.perf_counter()
    for _ in range(steps):
        next(batches)
    _sync(trainer.device)
    out["data_ms"] = 1e3 * (time.perf_counter() - start) / steps
    net = plan.network
    start = time.perf_counter()
    for _ in range(steps):
        net.update_shape()
    out["projection_ms"] = 1e3 * (time.perf_counter() - start) / steps
    for p in trainer.alpha_params:
        p.grad = torch.ones_like(p)
    start = time.perf_counter()
    for _ in range(steps):
        for p in trainer.alpha_params:
            p.grad = torch.ones_like(p)
        trainer._alpha_update()
    _sync(trainer.device)
    out["alpha_update_ms"] = 1e3 * (time.perf_counter() - start) / steps
    return out


def summarise(rows: list[dict]) -> str:
    lines = [
        "| label | device | amp | phase | loop img/s | bare img/s | loop / bare | loop on the loader img/s | data ms "
        "| projection ms | alpha update ms |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        for phase in PHASES:
            loop = statistics.median(x["images_per_s"] for x in r["loop"][phase])
            bare = statistics.median(x["images_per_s"] for x in r["bare"][phase])
            p = r.get("parts") or {}
            on_loader = r.get("loop_loader", {}).get(phase)
            on_loader = f"{statistics.median(x['images_per_s'] for x in on_loader):.0f}" if on_loader else "—"
            lines.append(
                f"| {r['label']} | {r['device']} | {r['amp']} | {phase} | {loop:.0f} | {bare:.0f} | {loop / bare:.2f} | "
                f"{on_loader} | "
                + " | ".join(f"{p[k]:.1f}" if k in p else "—" for k in ("data_ms", "projection_ms", "alpha_update_ms"))
                + " |"
            )
            if phase == "fixed" and r.get("compiled"):
                c = r["compiled"]
                lines.append(
                    f"| {r['label']} | {r['device']} | {r['amp']} | fixed, --compile ({c['warmup_s']:.0f} s to "
                    f"compile and warm up) | {c['images_per_s']:.0f} | {bare:.0f} | {c['images_per_s'] / bare:.2f} "
                    "| | | | |"
                )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = parser(__doc__)
    ap.add_argument("--model", default="mobilenet_v2_cifar")
    ap.add_argument("--budget", default="15M")
    ap.add_argument("--input-size", type=int, default=28)
    ap.add_argument("--images", type=int, default=3072, help="training images per measured epoch")
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--data-root", default=None, help="Fashion-MNIST's idx files (default: the system copy)")
    ap.add_argument("--amp", default="off")
    ap.add_argument("--device-data", default=None, help="the trainer's --device-data (default: its own default)")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--no-parts", dest="parts", action="store_false")
    ap.add_argument("--no-loader", dest="loader", action="store_false", help="skip the loop on the per-image loader")
    ap.add_argument("--compile", action="store_true", help="also the fixed phase with --compile (once)")
    ap.add_argument("--label", default="")
    add_out(ap, "throughput.jsonl")
    args = ap.parse_args(argv)
    if not args.summary:
        job = {"label": args.label, "device": args.device, "amp": args.amp, "device_data": args.device_data}
        run_grid([job], lambda _: measure(args), args.out, key=tuple(job), describe=lambda r: f"{r['label']}: measured")
    print(summarise(load_rows(args.out)))


def measure(args) -> dict:
    """One measurement: every phase's loop and bare rates, interleaved ``--repeats`` times, and the parts."""
    flat = {
        "model": args.model, "budget": args.budget, "input_size": args.input_size, "data": "fashion-mnist",
        "data_root": args.data_root, "subset": args.images, "epochs": 1, "batch_size": args.batch_size, "lr": 0.05, "weight_decay": 4e-5,
        "device": args.device, "amp": args.amp, "val_split": 0.0,
    }  # fmt: skip
    if args.device_data is not None:
        flat["device_data"] = args.device_data
    config = RunConfig.from_flat(flat)
    bundle = load_dataset(config, input_size(config))
    steps = len(bundle.train) // args.batch_size - WARM_BATCHES - 1
    row: dict = {"images": len(bundle.train), "batch_size": args.batch_size, "loop": {}, "bare": {}}
    # ``loader``: the same loop reading through the per-image DataLoader (--device-data off), where the data
    # path is a choice: the device path's gain measured in the same run
    loader = dataclasses.replace(config, train=dataclasses.replace(config.train, device_data="off"))
    kinds = {
        "loop": lambda phase: loop_rate(config, bundle, phase),
        "bare": lambda phase: bare_rate(config, bundle, phase, steps),
    }
    if args.loader:
        kinds["loop_loader"] = lambda phase: loop_rate(loader, bundle, phase)
    for phase in PHASES:
        for i in range(args.repeats):
            order = list(kinds) if i % 2 == 0 else list(kinds)[::-1]
            for kind in order:
                r = kinds[kind](phase)
                row.setdefault(kind, {}).setdefault(phase, []).append(r)
                print(f"{phase} {kind}: {r['images_per_s']:.0f} images/s", flush=True)
    if args.compile:
        row["compiled"] = loop_rate(config, bundle, "fixed", compile=True)
        print(f"fixed loop, compiled: {row['compiled']['images_per_s']:.0f} images/s after "
              f"{row['compiled']['warmup_s']:.0f} s of compiling and warm-up", flush=True)  # fmt: skip
    if args.parts:
        row["parts"] = parts_ms(config, bundle, steps)
        print(row["parts"], flush=True)
    return row


if __name__ == "__main__":
    main()
