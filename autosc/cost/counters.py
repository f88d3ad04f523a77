"""Cost of a network at an input size, by the libraries' own counters.

Convention "standard" (docs/algorithm.md, Cost conventions): MACs of Conv2d and Linear (BN folded, bias and
elementwise ops not counted) = ``torch.utils.flop_counter`` FLOPs / 2, which
equals fvcore with only its conv/linear/matmul handles. Convention "paper":
thop's count (conv + linear + 4 per BatchNorm element), which reproduces the
seed table. Bilinear resize MACs (4 per output element) are reported apart.
"""

from __future__ import annotations

import copy
import warnings
from dataclasses import asdict, dataclass, field

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from ..errors import AutoscError, one_line
from ..models.cells import model_cells
from .trace import OpRecorder

#: The MACs conventions, with what each counts (docs/algorithm.md, Cost conventions): the one list of them.
CONVENTIONS = {
    "standard": "standard: conv + linear, BN folded",
    "paper": "paper: thop-style, conv + linear + 4×BN",
}


def check_convention(name: str, what: str = "MACs convention") -> str:
    """``name`` if it is a MACs convention, else one line (naming ``what``, e.g. the option) listing the accepted ones."""
    if name not in CONVENTIONS:
        raise AutoscError(f"unknown {what} {name!r}; use one of {', '.join(CONVENTIONS)}")
    return name


COUNTER_NAMES = {
    "standard": "torch.utils.flop_counter (FLOPs/2: conv + linear, BN folded)",
    "paper": "thop (conv + linear + 4 x BatchNorm elements)",
}


@dataclass
class CellCost:
    name: str
    kind: str
    out_shape: list[int]
    macs: int
    params: int


@dataclass
class CostReport:
    """MACs, resize MACs, params and activation memory of one network at one input size."""

    input_size: tuple[int, int]
    convention: str
    counter: str
    macs: int
    resize_macs: int
    params: int
    activation_bytes: int
    cells: list[CellCost] = field(default_factory=list)
    norm_elements: int = 0  # batch-norm output elements (the paper convention adds 4 MACs each)

    @property
    def total_macs(self) -> int:
        """MACs including the adaptors' bilinear resizes (what a budget is checked against)."""
        return self.macs + self.resize_macs

    def macs_in(self, convention: str) -> int:
        """Conv + linear MACs in ``convention``: a standard count plus 4 per BN element gives the paper one."""
        if convention == self.convention:
            return self.macs
        if (self.convention, convention) == ("standard", "paper"):
            return self.macs + 4 * self.norm_elements
        raise AutoscError(f"a {self.convention}-convention count cannot be expressed in the {convention} convention")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["input_size"] = list(self.input_size)
        d["total_macs"] = self.total_macs
        return d


def infer_in_channels(model: nn.Module) -> int:
    """Input channels of the first convolution (3 if the network has none)."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            return m.in_channels
    return 3


def example_input(model: nn.Module, input_size: tuple[int, int], batch: int = 1) -> torch.Tensor:
    """A zero image batch on the model's device, the shape every counter runs on."""
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    return torch.zeros(batch, infer_in_channels(model), *input_size, device=device)


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _run(model: nn.Module, x: torch.Tensor):
    """Run the model once in eval mode, turning shape errors into a one-line message."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            return model(x)
    except RuntimeError as exc:
        first = one_line(exc)
        raise AutoscError(f"the network cannot run on a {tuple(x.shape[1:])} input: {first}") from exc
    finally:
        model.train(was_training)


def thop_macs(model: nn.Module, x: torch.Tensor) -> int:
    """The paper convention: thop's MACs (conv, linear, 4 per BN element) on a copy of the model."""
    import thop

    clone = copy.deepcopy(model).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        macs, _ = thop.profile(clone, inputs=(x,), verbose=False)
    return int(macs)


def fvcore_macs(model: nn.Module, x: torch.Tensor) -> int:
    """fvcore's count with only its conv / linear / matmul handles: a second, JIT-based counter."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fvcore.nn import jit_handles
        from fvcore.nn.jit_analysis import JitModelAnalysis

        handles = {
            "aten::_convolution": jit_handles.conv_flop_jit,
            "aten::addmm": jit_handles.addmm_flop_jit,
            "aten::linear": jit_handles.linear_flop_jit,
            "aten::matmul": jit_handles.matmul_flop_jit,
            "aten::mm": jit_handles.matmul_flop_jit,
            "aten::bmm": jit_handles.bmm_flop_jit,
        }
        was_training = model.training
        analysis = JitModelAnalysis(model.eval(), (x,)).set_op_handle(**handles)
        analysis.unsupported_ops_warnings(False)
        analysis.uncalled_modules_warnings(False)
        try:
            return int(analysis.total())
        finally:
            model.train(was_training)


def count(
    model: nn.Module,
    input_size: tuple[int, int],
    *,
    convention: str = "standard",
    cells: bool = True,
) -> CostReport:
    """Count ``model`` on one ``input_size`` image (batch 1, float32).

    One pass runs under both ``FlopCounterMode`` (MACs, per-cell breakdown) and
    :class:`OpRecorder` (resize MACs, activation bytes); the paper convention
    adds a thop pass.
    """
    check_convention(convention)
    x = example_input(model, input_size)
    cell_list = model_cells(model) if cells else []
    shapes: dict[str, list[int]] = {}
    hooks = [
        module.register_forward_hook(lambda m, i, o, name=name: shapes.__setitem__(name, list(o.shape)))
        for name, module in cell_list
    ]
    flops = FlopCounterMode(display=False)
    recorder = OpRecorder()
    try:
        with flops, recorder:
            _run(model, x)
    finally:
        for h in hooks:
            h.remove()
    macs = flops.get_total_flops() // 2
    if convention == "paper":
        macs = thop_macs(model, x)
    per_module = flops.get_flop_counts()
    root = type(model).__name__
    rows = [
        CellCost(
            name=name,
            kind=type(module).__name__,
            out_shape=shapes.get(name, []),
            macs=sum(per_module.get(f"{root}.{name}", {}).values()) // 2,
            params=count_params(module),
        )
        for name, module in cell_list
    ]
    return CostReport(
        input_size=tuple(input_size),
        convention=convention,
        counter=COUNTER_NAMES[convention],
        macs=int(macs),
        resize_macs=sum(r.resize_macs for r in recorder.records),
        params=count_params(model),
        activation_bytes=sum(r.new_bytes for r in recorder.records),
        norm_elements=sum(r.norm_elements for r in recorder.records),
        cells=rows,
    )
