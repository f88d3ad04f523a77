"""Torch-Pruning's global channel pruning of a network, to a ratio or to a MACs target (docs/algorithm.md,
Channel pruning).

The dependency groups' channels are ranked together across the network (global), each layer keeps a multiple of
``ROUND_TO`` channels (what vectorised kernels run fastest), and the classifier's outputs (the classes) are never
pruned. The pruning ratio does not map to MACs exactly, so :func:`prune_to_macs` searches it.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import AutoscError, one_line
from .importance import DEFAULT_IMPORTANCE, importance_of

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
    importance: str = DEFAULT_IMPORTANCE, round_to: int = ROUND_TO, batch: tuple[Tensor, Tensor] | None = None,
) -> nn.Module:  # fmt: skip
    """A pruned deep copy of ``net`` at Torch-Pruning's global ``pruning_ratio``; ``net`` itself is untouched.

    The copy keeps ``net``'s training mode and carries no gradients. A network Torch-Pruning cannot trace (its
    dependency graph fails), or whose pruned copy no longer runs (a forward that hard-codes a channel count), is
    refused in one line naming the network.
    """
    import torch_pruning as tp

    criterion = importance_of(importance)
    if criterion.needs_batch and batch is None:
        raise AutoscError(f"importance {importance!r} needs a batch of labelled images to take gradients on")
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
                                      global_pruning=True, round_to=round_to,
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


def prune_to_macs(
    net: nn.Module, input_size: tuple[int, int], in_channels: int, target_macs: int, *,
    importance: str = DEFAULT_IMPORTANCE, round_to: int = ROUND_TO, steps: int = 12,
    batch: tuple[Tensor, Tensor] | None = None,
) -> nn.Module:  # fmt: skip
    """The largest pruning of ``net`` (:func:`prune_at_ratio`) whose MACs at ``input_size`` are at most
    ``target_macs``: the ratio searched over :data:`RATIO_GRID`, then ``steps`` bisections. ``net`` is left as
    it is; a network already under the target comes back as a copy."""
    importance_of(importance)  # an unknown name fails before any work
    if macs(net, input_size) <= target_macs:
        return copy.deepcopy(net)

    def at(ratio: float) -> tuple[int, nn.Module]:
        pruned = prune_at_ratio(net, input_size, in_channels, ratio, importance=importance, round_to=round_to,
                                batch=batch)  # fmt: skip
        return macs(pruned, input_size), pruned

    low, best = 0.0, None  # low: the largest ratio known to miss the target
    for ratio in RATIO_GRID:
        found, pruned = at(ratio)
        if found <= target_macs:
            high, best = ratio, (found, pruned)
            break
        low = ratio
    if best is None:
        raise AutoscError(
            f"pruning with importance {importance!r} cannot bring the network to {target_macs} MACs "
            f"(at ratio {RATIO_GRID[-1]} it still has {found}); choose a larger target or another importance"
        )
    for _ in range(steps):
        mid = (low + high) / 2
        found, pruned = at(mid)
        if found <= target_macs:
            high = mid
            if found > best[0]:
                best = (found, pruned)
        else:
            low = mid
    return best[1]
