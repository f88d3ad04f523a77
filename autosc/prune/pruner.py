"""Torch-Pruning's global channel pruning of a network, to a ratio or to a MACs target (docs/algorithm.md,
Channel pruning).

The dependency groups' channels are ranked together across the network (global), each layer keeps a multiple of
``ROUND_TO`` channels (what vectorised kernels run fastest), and the classifier's outputs (the classes) are never
pruned. The pruning ratio does not map to MACs exactly, so :func:`prune_to_macs` searches it.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import AutoscError, one_line
from .importance import DATA_FREE_IMPORTANCE, importance_of

#: Each pruned layer keeps a multiple of this many channels.
ROUND_TO = 8

#: The pruning ratios tried, in order, until one fits the target; the search then bisects below the first that fits.
#: Torch-Pruning's MACs are not monotone in the ratio at its top end (a group whose every channel falls under the
#: global threshold is left whole), so the search brackets the first crossing instead of bisecting over [0, 1].
RATIO_GRID = tuple(round(0.1 * k, 1) for k in range(1, 10))


def classifier(net: nn.Module) -> nn.Linear:
    """The network's last ``nn.Linear`` (its classifier), whose outputs are the classes and are never pruned."""
    linears = [m for m in net.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise AutoscError("the network has no nn.Linear classifier, so autosc cannot tell which outputs to keep")
    return linears[-1]


def macs(net: nn.Module, input_size: tuple[int, int]) -> int:
    """autosc's standard MACs of ``net`` at ``input_size`` (conv + linear, BN folded), resizes included."""
    from ..cost import count

    return count(net, input_size, cells=False).total_macs


def prune_at_ratio(
    net: nn.Module, input_size: tuple[int, int], in_channels: int, ratio: float, *,
    importance: str = DATA_FREE_IMPORTANCE, round_to: int = ROUND_TO, batch: tuple[Tensor, Tensor] | None = None,
    uniform: bool = False,
) -> nn.Module:  # fmt: skip
    """A pruned deep copy of ``net`` at Torch-Pruning's global ``pruning_ratio`` (``uniform``: every layer pruned by
    the ratio, Torch-Pruning's local pruning: the network narrowed by one ratio); ``net`` itself is untouched.

    The copy keeps ``net``'s training mode and carries no gradients. A network Torch-Pruning cannot trace (its
    dependency graph fails), or whose pruned copy no longer runs (a forward that hard-codes a channel count), is
    refused in one line naming the network.
    """
    import torch_pruning as tp

    criterion = importance_of(importance)
    if criterion.needs_batch and batch is None:
        raise AutoscError(f"importance {importance!r} needs a batch of labelled images to take gradients on, and none "
                          "was given: name a data-free one (--importance l1 or bn), or give the images (--data for autosc "
                          "probe, which compress reads anyway; prune_batch=(images, labels) in autosc.plan and probe)")
    pruned = copy.deepcopy(net)
    was_training = net.training
    param = next(pruned.parameters())
    example = torch.zeros(1, in_channels, *input_size, device=param.device, dtype=param.dtype)
    if criterion.needs_batch:
        pruned.eval()  # gradients without moving the batch-norm statistics of the copy
        pruned.zero_grad(set_to_none=True)
        x, y = batch
        F.cross_entropy(pruned(x.to(param.device)), y.to(param.device)).backward()
    try:
        pruner = tp.pruner.MetaPruner(pruned, example, importance=criterion.make(), pruning_ratio=ratio,
                                      global_pruning=not uniform, round_to=round_to,
                                      ignored_layers=[classifier(pruned)])  # fmt: skip
        pruner.step()
        with torch.no_grad():  # a forward that hard-codes a channel count breaks only when run
            pruned.eval()(example)
    except AutoscError:
        raise
    except Exception as exc:  # what Torch-Pruning cannot follow or breaks: say which network, in one line
        raise AutoscError(
            f"Torch-Pruning cannot prune {type(net).__name__} ({one_line(exc)}); compress its shape only"
        ) from exc
    pruned.zero_grad(set_to_none=True)
    return pruned.train(was_training)  # tracing left the copy in eval mode


def prune_to_fit(
    net: nn.Module, input_size: tuple[int, int], in_channels: int, fits: Callable[[nn.Module], bool], *,
    importance: str = DATA_FREE_IMPORTANCE, round_to: int = ROUND_TO, steps: int = 12,
    batch: tuple[Tensor, Tensor] | None = None, target: str = "the target", uniform: bool = False,
) -> tuple[nn.Module, float]:  # fmt: skip
    """The least pruning of ``net`` (:func:`prune_at_ratio`) that ``fits``, and its ratio: the ratio searched over
    :data:`RATIO_GRID` for the first that fits, then ``steps`` bisections below it. ``net`` is left as it is; a
    network that fits already comes back as a copy at ratio 0. ``target`` names what must fit, for the refusal."""
    importance_of(importance)  # an unknown name fails before any work
    if fits(net):
        return copy.deepcopy(net), 0.0

    def at(ratio: float) -> nn.Module:
        return prune_at_ratio(net, input_size, in_channels, ratio, importance=importance, round_to=round_to,
                              batch=batch, uniform=uniform)  # fmt: skip

    low, best = 0.0, None  # low: the largest ratio known not to fit
    for ratio in RATIO_GRID:
        pruned = at(ratio)
        if fits(pruned):
            high, best = ratio, pruned
            break
        low = ratio
    if best is None:
        raise AutoscError(
            f"pruning with importance {importance!r} cannot bring the network under {target} (not even at ratio "
            f"{RATIO_GRID[-1]}); choose a larger budget, another importance, or --strategy shape or compound"
        )
    for _ in range(steps):
        mid = (low + high) / 2
        pruned = at(mid)
        if fits(pruned):
            high, best = mid, pruned
        else:
            low = mid
    return best, high


def prune_to_macs(
    net: nn.Module, input_size: tuple[int, int], in_channels: int, target_macs: int, *,
    importance: str = DATA_FREE_IMPORTANCE, round_to: int = ROUND_TO, steps: int = 12,
    batch: tuple[Tensor, Tensor] | None = None,
) -> nn.Module:  # fmt: skip
    """The least pruning of ``net`` whose MACs at ``input_size`` are at most ``target_macs`` (:func:`prune_to_fit`).
    ``net`` is left as it is; a network already under the target comes back as a copy."""
    pruned, _ = prune_to_fit(
        net, input_size, in_channels, lambda p: macs(p, input_size) <= target_macs, importance=importance,
        round_to=round_to, steps=steps, batch=batch, target=f"{target_macs} MACs",
    )  # fmt: skip
    return pruned
