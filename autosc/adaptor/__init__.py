"""Shape adaptors: the learnable resizing module and where it goes in a network."""

from .modes import MODES, Placement, place_adaptors
from .module import (
    KINDS,
    LOW_BRANCHES,
    LOWER_BOUND,
    MIN_SIZE,
    MIXES,
    AdaptedCell,
    ShapeAdaptor,
    alpha_to_factor,
    factor_to_alpha,
    identity_alpha,
    low_branch,
    one_branch,
    resize,
)
from .placement import Candidate, choose, default_adaptor_count, find_candidates, insert_adaptors, meta_copy
from .standard import find_resizing, stride_one

__all__ = [
    "KINDS",
    "MODES",
    "LOW_BRANCHES",
    "LOWER_BOUND",
    "MIN_SIZE",
    "MIXES",
    "AdaptedCell",
    "Candidate",
    "Placement",
    "ShapeAdaptor",
    "alpha_to_factor",
    "choose",
    "default_adaptor_count",
    "factor_to_alpha",
    "identity_alpha",
    "find_candidates",
    "insert_adaptors",
    "low_branch",
    "meta_copy",
    "one_branch",
    "place_adaptors",
    "find_resizing",
    "stride_one",
    "resize",
]
