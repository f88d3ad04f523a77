"""Shape adaptors: the learnable resizing module and where it goes in a network."""

from .module import (
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

__all__ = [
    "LOW_BRANCHES",
    "LOWER_BOUND",
    "MIN_SIZE",
    "MIXES",
    "AdaptedCell",
    "Candidate",
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
    "resize",
]
