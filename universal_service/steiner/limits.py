"""Deterministic work limits of the Steiner heuristic and dual ascent, and their work counter."""

from __future__ import annotations

import time
from dataclasses import dataclass


@dataclass(frozen=True)
class WorkLimits:
    """Deterministic stopping rules of the heuristic and of dual ascent.

    Counts of work, never the clock, end each stage, so a result depends only on the input.
    The defaults find the published optimum on 17 of the 18 SteinLib set-B instances (the
    heuristic never reaches its work limit there) and solve the bundled region's 385 fiber
    villages (a 10,000-node route graph) in about 3 s of one 2020s laptop core.

    Attributes
    ----------
    sph_starts : int
        Shortest-path-heuristic starts (Takahashi and Matsuyama 1980): the root, then the
        first ``sph_starts - 1`` other terminals in node order.
    local_search_rounds : int
        Rounds of local search per start: key-path exchange and key-vertex elimination, then,
        in a round where those two improve nothing, vertex moves; the search ends earlier
        when a whole round improves nothing.
    move_passes : int
        Passes of one neighbourhood within a round (a pass of key-vertex elimination ends at
        its first improving move, so this also caps those moves); a pass that improves nothing
        ends the neighbourhood earlier.
    heuristic_work : int
        Budget of the whole heuristic in arc scans [-]: every shortest-path search is charged
        the arcs it can reach (settled nodes times mean degree), every minimum spanning tree
        the edges it reads, plus set-up proportional to the node count; about 10^7 run in a
        second. The heuristic stops (keeping its best tree) once the budget is spent, and
        begins a shortest-path start only while the budget left covers the first local
        search. The default, 4 x 10^7, covers the two first starts and their local search on
        the bundled case (about 2.6 x 10^7; its best tree, 1,687,375 m, is found at 1.8 x
        10^7) and reaches the costs that the former wall-clock budget (36 s) gave on the 200- and
        1,600-village synthetic regions of ``benchmarks/steiner.py``.
    dual_ascent_iterations : int
        Dual ascent steps (one terminal's cut examined, and raised unless it has grown) [-].
        Dual ascent runs to completion within it on every instance here: 33 to 120 steps on
        SteinLib set B, 7,446 on the bundled case, 10,124 on the 1,600-village synthetic
        region.
    """

    sph_starts: int = 8
    local_search_rounds: int = 20
    move_passes: int = 20
    heuristic_work: int = 40_000_000
    dual_ascent_iterations: int = 200_000

    def __post_init__(self) -> None:
        for name in (
            "sph_starts",
            "local_search_rounds",
            "move_passes",
            "heuristic_work",
            "dual_ascent_iterations",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"WorkLimits.{name} must be an integer >= 0 (got {value!r})")


class Budget:
    """Deterministic work counter [arc scans] with a wall-clock safety net.

    Each step of the heuristic is charged from counts alone (arcs reachable from the nodes a
    shortest-path search settled, edges read by a minimum spanning tree, plus array set-up
    proportional to the node count), with factors set so that on a 2020s laptop core about
    10^7 units run per second whatever the mix of steps.

    ``stop()`` is True once the work is spent (reproducible) or past ``deadline`` (not
    reproducible: ``timed_out`` records it so that the result says so).

    Parameters
    ----------
    work : int
        Work allowed [arc scans].
    deadline : float
        ``time.monotonic()`` value after which ``stop()`` is True [s].
    """

    def __init__(self, work: int, deadline: float):
        self.work = work
        self.spent = 0
        self.deadline = deadline
        self.timed_out = False
        self.cut_short = ""  # what the work limit left out, for the note

    def spend(self, units: float) -> None:
        """Charge ``units`` of work [arc scans]."""
        self.spent += int(units)

    @property
    def exhausted(self) -> bool:
        """True once the work is spent."""
        return self.spent >= self.work

    def stop(self) -> bool:
        """True once the work is spent or the deadline has passed (then ``timed_out``)."""
        if self.exhausted:
            return True
        if time.monotonic() > self.deadline:
            self.timed_out = True
            return True
        return False
