"""Allocating the obligation and its cost among operators, under four regimes, side by side."""

from .allocation import (
    ALLOCATION_FILES,
    allocate,
    format_table,
    operator_table,
    reference_shares,
    regime_table,
)
from .footprint import NEUTRAL_HOST, CoalitionCosts, footprint
from .regimes import auction, fund, lots, shared
from .sharing import excesses, nucleolus, shapley, shapley_tree

__all__ = [
    "ALLOCATION_FILES",
    "NEUTRAL_HOST",
    "CoalitionCosts",
    "allocate",
    "auction",
    "excesses",
    "footprint",
    "format_table",
    "fund",
    "lots",
    "nucleolus",
    "operator_table",
    "reference_shares",
    "regime_table",
    "shapley",
    "shapley_tree",
    "shared",
]
