"""Allocation of a shared cost among operators: Shapley value, tree games and the nucleolus."""

from .sharing import excesses, nucleolus, shapley, shapley_tree

__all__ = ["excesses", "nucleolus", "shapley", "shapley_tree"]
