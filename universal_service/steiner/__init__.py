"""Steiner trees and forests in graphs, with proven lower bounds, on deterministic work limits."""

from .bounds import dual_ascent_bound
from .limits import WorkLimits
from .solve import SteinerResult, steiner_forest, steiner_tree

__all__ = [
    "SteinerResult",
    "WorkLimits",
    "dual_ascent_bound",
    "steiner_forest",
    "steiner_tree",
]
