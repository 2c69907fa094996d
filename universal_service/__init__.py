"""Universal-service planner: connect every village at an affordable price, and decide who pays."""

__version__ = "0.1.0"
