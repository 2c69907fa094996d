"""Generic array MILP backend: a problem as sparse arrays, solved by HiGHS (highspy) or CBC (PuLP)."""

from __future__ import annotations

import dataclasses
import math
import os
import pickle
import select
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pulp
from scipy import sparse

from universal_service.errors import SolverError

try:
    import highspy
except ImportError:  # pragma: no cover - CBC through PuLP is the fallback
    highspy = None

SOLVERS = ("highs", "cbc")
STATUSES = ("optimal", "time_limit", "infeasible", "unbounded", "error")
#: Tolerance of the integrality and row checks of an LP solution (absolute, and relative to |rhs|).
FEASIBILITY_TOL = 1e-6
#: Share of the time limit the LP relaxation may use in an ``lp_first`` solve.
LP_TIME_SHARE = 0.9
#: Models with at least this many columns solve their MILP (HiGHS) in a child process that is stopped
#: :data:`GUARD_GRACE_S` after its time limit: HiGHS checks its time limit only between phases, and on
#: large models with a warm-start cutoff its root heuristics (central rounding, conflict analysis) can
#: run for many minutes past it (ERGO-Code/HiGHS#885, #1278; seen on a generated 100k-option model).
GUARD_COLS = 50_000
#: Seconds the guarded child may run past its time limit before it is stopped. [s]
GUARD_GRACE_S = 5.0
#: Longest wait for the guarded child to start, import and load the model; its time limit counts
#: from the moment it reports ready, so a slow start on a loaded machine does not eat solver time. [s]
GUARD_START_S = 300.0


def absorb_highs_banner() -> None:
    """Swallow the banner HiGHS prints on the C-level stdout when a process makes its first solver.

    HiGHS writes it once per process, past Python's ``sys.stdout``; making that first ``Highs``
    object here with file descriptor 1 on ``/dev/null`` leaves a command's printed summary (and
    a Dask worker's inherited terminal) free of it. A no-op without highspy.
    """
    if highspy is None:
        return
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 1)
            highspy.Highs()
    finally:
        os.dup2(saved, 1)
        os.close(saved)


@dataclass(frozen=True)
class Problem:
    """A linear (mixed-integer) program: optimise ``sense * (c @ x + offset)`` (1 min, -1 max) s.t.
    ``row_lower <= A @ x <= row_upper`` and ``col_lower <= x <= col_upper``, ``x[j]`` integer where
    ``integrality[j]``.

    Infinite bounds are ``-inf`` / ``inf``. ``col_names`` and ``row_names`` (unique) name the columns
    and rows in the PuLP / ``.lp`` export and in :func:`to_highs`; without them ``c{j}`` / ``r{i}``.
    """

    c: np.ndarray
    A: sparse.csc_matrix
    row_lower: np.ndarray
    row_upper: np.ndarray
    col_lower: np.ndarray
    col_upper: np.ndarray
    integrality: np.ndarray
    sense: int = 1
    offset: float = 0.0
    col_names: tuple[str, ...] | None = None
    row_names: tuple[str, ...] | None = None
    name: str = "model"

    def __post_init__(self) -> None:
        n = len(self.c)
        m = len(self.row_lower)
        if not sparse.issparse(self.A) or self.A.format != "csc":
            object.__setattr__(self, "A", sparse.csc_matrix(self.A))
        problems = []
        if self.A.shape != (m, n):
            problems.append(f"A has shape {self.A.shape}, expected (rows, cols) = ({m}, {n})")
        for field_name, size in (
            ("row_upper", m),
            ("col_lower", n),
            ("col_upper", n),
            ("integrality", n),
        ):
            if len(getattr(self, field_name)) != size:
                problems.append(
                    f"{field_name} has {len(getattr(self, field_name))} entries, expected {size}"
                )
        if self.sense not in (1, -1):
            problems.append(f"sense must be 1 (minimise) or -1 (maximise), got {self.sense!r}")
        if self.col_names is not None and len(self.col_names) != n:
            problems.append(f"col_names has {len(self.col_names)} names, expected {n}")
        if self.row_names is not None and len(self.row_names) != m:
            problems.append(f"row_names has {len(self.row_names)} names, expected {m}")
        if problems:
            raise ValueError("milp.Problem: " + "; ".join(problems))

    @property
    def n_cols(self) -> int:
        return len(self.c)

    @property
    def n_rows(self) -> int:
        return len(self.row_lower)


@dataclass
class Result:
    """Outcome of :func:`solve`.

    ``status`` is one of :data:`STATUSES`; ``x`` the best solution found (integer columns rounded,
    None when there is none); ``objective`` ``c @ x + offset`` (nan without ``x``); ``bound`` the best
    proven bound (MIP dual bound, or the LP objective when the LP relaxation or a pure LP was solved)
    and ``gap`` the relative gap between them (:func:`relative_gap`). ``row_duals`` are the LP
    relaxation's (or pure LP's) row duals, d(objective)/d(row bound) in the problem's own sense
    (None for a MIP run without ``lp_first``). ``lp_objective`` is the LP relaxation objective of an
    ``lp_first`` or ``relax`` solve (nan otherwise), ``start_objective`` that of the MIP start used.
    ``seconds`` is the wall time [s]; ``message`` the solver's own words (HiGHS's MIP presolve
    "infeasible or unbounded" is reported as ``infeasible``).
    """

    status: str
    x: np.ndarray | None
    objective: float
    bound: float
    gap: float
    row_duals: np.ndarray | None
    solver: str
    solver_version: str
    seconds: float
    message: str = ""
    lp_objective: float = math.nan
    start_objective: float = math.nan


def relative_gap(objective: float, bound: float, sense: int) -> float:
    """``|objective - bound| / |objective|`` (0 when they agree, inf for objective 0, nan if unknown).

    Parameters
    ----------
    objective, bound : float
        Objective of the best solution and the best proven bound, in the objective's units.
    sense : {1, -1}
        1 when minimising (bound below the objective), -1 when maximising.
    """
    if not (math.isfinite(objective) and math.isfinite(bound)):
        return math.nan
    diff = max(0.0, sense * (objective - bound))
    return 0.0 if diff == 0 else diff / abs(objective) if objective != 0 else math.inf


def solver_used(solver: str) -> str:
    """The backend :func:`solve` runs for ``solver``: "cbc" when "highs" is asked but highspy is missing."""
    if solver not in SOLVERS:
        raise SolverError(f"solver must be one of {SOLVERS} (got {solver!r})")
    return "highs" if solver == "highs" and highspy is not None else "cbc"


def solve(
    problem: Problem,
    *,
    solver: str = "highs",
    relax: bool = False,
    time_limit_s: float = 60.0,
    mip_gap: float = 1e-4,
    threads: int = 1,
    seed: int = 0,
    start: np.ndarray | Callable[[np.ndarray | None], np.ndarray | None] | None = None,
    lp_first: bool = False,
    **options: object,
) -> Result:
    """Solve a :class:`Problem` with HiGHS or CBC; an infeasible or timed-out solve is a status.

    Parameters
    ----------
    problem : Problem
    solver : {"highs", "cbc"}
        HiGHS through highspy arrays (falls back to CBC when highspy is missing), or CBC through PuLP.
    relax : bool
        Solve the LP relaxation only (integrality dropped); a problem without integer columns is
        always solved as an LP. Either way ``row_duals`` are returned.
    time_limit_s : float
        Wall-clock limit of the whole solve. [s]
    mip_gap : float
        Relative optimality gap at which the MILP stops. [-]
    threads : int
        Solver threads; 1 keeps runs reproducible.
    seed : int
        Random seed of the solver (CBC gets ``seed + 1``).
    start : numpy.ndarray or callable or None
        A feasible solution, or a function of the LP relaxation's solution (None when it did not
        finish, or without ``lp_first``) returning one or None, called just before the MILP. HiGHS
        gets it through its user-solution callback once branch and bound has processed a node (an
        incumbent present during the root can stall HiGHS 1.16's root heuristics for minutes on large
        models), CBC as its initial solution. It is returned when the solver ends with nothing better.
    lp_first : bool
        Solve the LP relaxation first (with :data:`LP_TIME_SHARE` of the time limit): its objective
        is ``lp_objective``, a valid bound, and its duals are ``row_duals``. An integral LP solution
        that satisfies every row is returned as optimal; otherwise the MILP runs from the LP solution.
    **options
        Further HiGHS options (``setOptionValue``), set after the ones above.

    Returns
    -------
    Result
    """
    t0 = time.perf_counter()
    deadline = t0 + time_limit_s
    settings = _highs_settings(time_limit_s, mip_gap, threads, seed, options)
    if solver_used(solver) == "highs":
        backend = _HighsBackend(problem, settings)
    else:
        backend = _CbcBackend(problem, mip_gap, threads, seed)
    out = Result(
        "error", None, math.nan, math.nan, math.nan, None, backend.name, backend.version, 0.0
    )
    is_mip = not relax and bool(np.any(problem.integrality))
    if problem.n_cols == 0:  # nothing to choose (the solvers call an empty model an error)
        out.status, out.message, out.x = "optimal", "empty model: no columns", np.zeros(0)
        out.objective = out.bound = out.lp_objective = float(problem.offset)
        out.gap = 0.0
    elif not is_mip:
        _solve_lp(problem, backend, time_limit_s, out)
    else:
        _solve_mip(problem, backend, deadline, time_limit_s, start, lp_first, out)
    out.seconds = time.perf_counter() - t0
    return out


def _solve_lp(problem: Problem, backend: _Backend, time_limit_s: float, out: Result) -> None:
    """The LP (relaxation) alone, into ``out``."""
    lp = backend.relax(time_limit_s)
    out.status, out.message = lp.status, lp.termination
    if lp.status == "optimal":
        out.x, out.row_duals = lp.x, lp.row_dual
        out.objective = out.bound = out.lp_objective = lp.objective
        out.gap = 0.0


def _solve_mip(
    problem: Problem,
    backend: _Backend,
    deadline: float,
    time_limit_s: float,
    start: np.ndarray | Callable | None,
    lp_first: bool,
    out: Result,
) -> None:
    """The MILP, optionally LP relaxation first, keeping ``start`` if the solver finds nothing better."""
    lp = _Run("error", "")
    if lp_first:
        lp = backend.relax(LP_TIME_SHARE * time_limit_s)  # time left for a start if the LP overruns
        if lp.status == "optimal":
            out.lp_objective, out.row_duals = lp.objective, lp.row_dual
        elif lp.status in ("infeasible", "unbounded"):
            out.status, out.message = lp.status, f"LP relaxation: {lp.termination}"
            return
        z = _integral(problem, lp.x) if lp.x is not None else None
        if z is not None:
            out.status, out.message = "optimal", f"LP relaxation integral: {lp.termination}"
            out.x = z
            out.objective = out.bound = _value(problem, z)
            out.gap = 0.0
            return
    x0 = start(lp.x) if callable(start) else start
    if x0 is not None:
        x0 = _integral(problem, np.asarray(x0, dtype=float))  # a start that breaks a row is dropped
    if x0 is not None:
        out.start_objective = _value(problem, x0)
    remaining = deadline - time.perf_counter()
    if not lp_first or (lp.status == "optimal" and remaining > 0):
        run = backend.mip(remaining, x0)
    else:  # the MILP's root would need the same LP: no point starting it
        run = _Run("time_limit", f"LP relaxation stopped: {lp.termination}")
    out.status, out.message = run.status, run.termination
    x = _clean(problem, run.x) if run.x is not None else None
    if run.status in ("optimal", "time_limit") and x0 is not None:
        if x is None or problem.sense * (problem.c @ x0 - problem.c @ x) < 0:
            x = x0  # the solver's best is worse than the start (or it has none)
    bounds = [b for b in (run.bound, out.lp_objective) if math.isfinite(b)]  # both are valid
    out.bound = (max(bounds) if problem.sense == 1 else min(bounds)) if bounds else math.nan
    if x is not None:
        out.x, out.objective = x, _value(problem, x)
        out.gap = relative_gap(out.objective, out.bound, problem.sense)


def _value(problem: Problem, x: np.ndarray) -> float:
    return float(problem.c @ x) + float(problem.offset)


def _clean(problem: Problem, x: np.ndarray) -> np.ndarray:
    """Solution clipped to the column bounds, integer columns rounded."""
    x = np.clip(x, problem.col_lower, problem.col_upper)
    integer = np.asarray(problem.integrality, dtype=bool)
    if integer.all():
        return np.round(x)
    x[integer] = np.round(x[integer])
    return x


def _integral(problem: Problem, x: np.ndarray) -> np.ndarray | None:
    """The rounded LP solution if it is integral and satisfies every row, else None."""
    rounded = _clean(problem, x)
    integer = np.asarray(problem.integrality, dtype=bool)
    if np.abs(x - rounded)[integer].max(initial=0.0) > FEASIBILITY_TOL:
        return None
    activity = problem.A @ rounded
    lower, upper = problem.row_lower, problem.row_upper
    slack = FEASIBILITY_TOL * np.maximum(1.0, np.abs(np.where(np.isfinite(upper), upper, lower)))
    ok = (activity >= lower - slack) & (activity <= upper + slack)
    return rounded if ok.all() else None


# ---------------------------------------------------------------------------------------------- HiGHS


@dataclass
class _Run:
    """One solver run: status, termination text, raw column values, objective, bound, LP row duals."""

    status: str
    termination: str
    x: np.ndarray | None = None
    objective: float = math.nan
    bound: float = math.nan
    row_dual: np.ndarray | None = None


def to_highs(
    problem: Problem,
    *,
    time_limit_s: float = 60.0,
    mip_gap: float = 1e-4,
    threads: int = 1,
    seed: int = 0,
    **options: object,
) -> highspy.Highs:
    """The problem, with its names, in a ``highspy.Highs`` (``h.writeModel("m.mps")``, ``h.run()``).

    The options are those :func:`solve` sets (time limit [s], relative gap, threads, seed, no output).
    """
    if highspy is None:
        raise SolverError("highspy is not installed; pip install highspy, or use to_pulp(...)")
    return _highs(problem, _highs_settings(time_limit_s, mip_gap, threads, seed, options), True)


def _highs_settings(
    time_limit_s: float, mip_gap: float, threads: int, seed: int, options: dict[str, object]
) -> dict[str, object]:
    """HiGHS options in the order they are set: no output, gap, threads, seed, time limit, extras."""
    return {
        "output_flag": False,
        "mip_rel_gap": float(mip_gap),
        "threads": int(threads),
        "random_seed": int(seed),
        "time_limit": float(time_limit_s),
        **options,
    }


def _highs(problem: Problem, options: dict[str, object], names: bool = False) -> highspy.Highs:
    """A ``Highs`` object with the options set and the problem passed in one ``passModel``."""
    inf = highspy.kHighsInf
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = problem.n_cols, problem.n_rows
    lp.col_cost_ = problem.c
    lp.col_lower_ = np.where(np.isfinite(problem.col_lower), problem.col_lower, -inf)
    lp.col_upper_ = np.where(np.isfinite(problem.col_upper), problem.col_upper, inf)
    lp.row_lower_ = np.where(np.isfinite(problem.row_lower), problem.row_lower, -inf)
    lp.row_upper_ = np.where(np.isfinite(problem.row_upper), problem.row_upper, inf)
    lp.sense_ = highspy.ObjSense.kMinimize if problem.sense == 1 else highspy.ObjSense.kMaximize
    lp.offset_ = float(problem.offset)
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_, lp.a_matrix_.index_, lp.a_matrix_.value_ = (
        problem.A.indptr,
        problem.A.indices,
        problem.A.data,
    )
    integer = np.asarray(problem.integrality, dtype=bool)
    if integer.all():
        lp.integrality_ = [highspy.HighsVarType.kInteger] * lp.num_col_
    elif integer.any():
        kind = (highspy.HighsVarType.kContinuous, highspy.HighsVarType.kInteger)
        lp.integrality_ = [kind[i] for i in integer.tolist()]
    if names:
        lp.col_names_ = list(_col_names(problem))
        lp.row_names_ = list(_row_names(problem))
    threads = int(options.get("threads", 1))
    if _SCHEDULER_THREADS and _SCHEDULER_THREADS[0] != threads:
        highspy.Highs.resetGlobalScheduler(True)  # HiGHS fixes its thread pool at first use
    _SCHEDULER_THREADS[:] = [threads]
    h = highspy.Highs()
    for key, value in options.items():
        h.setOptionValue(key, value)
    if h.passModel(lp) != highspy.HighsStatus.kOk:
        raise SolverError("HiGHS rejected the model (passModel did not return kOk)")
    return h


#: Threads of HiGHS's process-wide scheduler once created (it must be reset to change them).
_SCHEDULER_THREADS: list[int] = []


def _highs_status(h: highspy.Highs) -> tuple[str, str]:
    status = h.getModelStatus()
    text = h.modelStatusToString(status)
    s = highspy.HighsModelStatus
    if status == s.kOptimal:
        return "optimal", text
    if status in (s.kInfeasible, s.kUnboundedOrInfeasible):
        return "infeasible", text
    if status == s.kUnbounded:
        return "unbounded", text
    limits = (
        s.kTimeLimit,
        s.kIterationLimit,
        s.kSolutionLimit,
        s.kInterrupt,
        s.kObjectiveBound,
        s.kObjectiveTarget,
    )
    return ("time_limit", text) if status in limits else ("error", text)


def _highs_mip(h: highspy.Highs, time_limit: float, start: np.ndarray | None) -> _Run:
    """Run the MILP on a freshly loaded ``Highs``, offered the start.

    ``start`` is offered through the user-solution callback once branch and bound has processed a
    node, not with ``setSolution``: an incumbent present during the root makes HiGHS 1.16's central
    rounding run conflict analysis against the dense objective cutoff for many minutes on large
    models (measured on a generated 100k-option model: no stop within 6 min with it, optimal in 8 s
    without it). The LP relaxation's fractional solution is not given as a start either (HiGHS
    completes one with a sub-MIP): on the bundled region with every hop's backhaul paid, HiGHS
    1.16 completed it to a plan whose reported objective (173.8 M) was not its value (182.8 M),
    cut off everything above it and stopped at the root with "Optimal"; without it, the
    optimum is 175.3 M. So the MILP also never runs on the ``Highs`` that solved the LP, which
    keeps that solution, and :func:`_reported_value_matches` checks every answer.
    """
    h.setOptionValue("solve_relaxation", False)
    h.setOptionValue("time_limit", max(time_limit, 1e-3))
    offered = []

    def offer(event: object) -> None:
        if not offered and event.data_out.mip_node_count >= 1:
            event.data_in.setSolution(start)  # sets user_solution and user_has_solution
            offered.append(True)

    if start is not None:
        h.cbMipUserSolution.subscribe(offer)
    h.run()
    if start is not None:
        h.cbMipUserSolution.unsubscribe(offer)
    status, text = _highs_status(h)
    info = h.getInfo()
    x = np.asarray(h.getSolution().col_value) if info.primal_solution_status == 2 else None
    if status == "optimal" and x is None:  # pragma: no cover - defensive
        status = "error"
    if x is not None and not _reported_value_matches(h, x, info.objective_function_value):
        # the solver's own objective is not its solution's: its bound and status prove nothing
        return _Run(
            "time_limit" if status in ("optimal", "time_limit") else status,
            f"{text}; HiGHS reported an objective that is not its solution's, so its bound is unused",
            x,
            math.nan,
            math.nan,
        )
    return _Run(
        status,
        text,
        x,
        info.objective_function_value if x is not None else math.nan,
        info.mip_dual_bound,
    )


def _reported_value_matches(h: highspy.Highs, x: np.ndarray, reported: float) -> bool:
    """Whether the solver's reported objective is ``c @ x + offset`` of its solution (to 1e-6)."""
    lp = h.getLp()
    value = float(np.asarray(lp.col_cost_) @ x) + float(lp.offset_)
    return abs(value - reported) <= 1e-6 * max(1.0, abs(value))


def _child_main() -> None:
    """Entry point of the guarded child (``python -c``): solve the pickled MILP from stdin.

    Messages go back as pickles on a private copy of the original stdout; the child's own file
    descriptor 1 is pointed at stderr, so that nothing HiGHS prints can corrupt that stream.
    """
    message_fd = os.dup(1)
    os.dup2(2, 1)
    with os.fdopen(message_fd, "wb") as out:

        def send(message: tuple) -> None:
            pickle.dump(message, out, protocol=pickle.HIGHEST_PROTOCOL)
            out.flush()

        problem, options, time_limit, start = pickle.load(sys.stdin.buffer)
        h = _highs(problem, options)

        def improving(event: object) -> None:
            data = event.data_out
            solution = np.asarray(data.mip_solution, dtype=float)
            send(("incumbent", solution, float(data.mip_dual_bound)))

        h.cbMipImprovingSolution.subscribe(improving)
        send(("ready",))
        send(("done", _highs_mip(h, time_limit, start)))


#: How the guarded child is started: a fresh interpreter that imports only this module (a
#: multiprocessing "spawn" child would first re-run the parent's ``__main__``, which is a
#: whole Streamlit app under AppTest, or any user script).
_CHILD_COMMAND = ("-c", "from universal_service import milp; milp._child_main()")


def _guarded_mip(
    problem: Problem,
    options: dict[str, object],
    time_limit: float,
    start: np.ndarray | None,
) -> _Run:
    """The MILP in a child process, stopped ``GUARD_GRACE_S`` after its time limit if still running.

    The time limit counts from the child's "ready" message (imports done, model loaded); until then
    the parent waits at most :data:`GUARD_START_S`.
    """
    unnamed = dataclasses.replace(problem, col_names=None, row_names=None)
    child = subprocess.Popen(
        [sys.executable, *_CHILD_COMMAND], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    deadline = time.perf_counter() + GUARD_START_S
    best, bound, result = None, math.nan, None
    try:
        pickle.dump(
            (unnamed, options, time_limit, start),
            child.stdin,
            protocol=pickle.HIGHEST_PROTOCOL,
        )
        child.stdin.close()
        while result is None and (left := deadline - time.perf_counter()) > 0:
            ready, _, _ = select.select([child.stdout], [], [], min(left, 0.25))
            if not ready:
                if child.poll() is not None:
                    break
                continue
            try:
                message = pickle.load(child.stdout)
            except (EOFError, pickle.UnpicklingError):
                break
            if message[0] == "ready":
                deadline = time.perf_counter() + max(time_limit, 1e-3) + GUARD_GRACE_S
            elif message[0] == "incumbent":
                best, bound = message[1], message[2]
            else:
                result = message[1]
    except BrokenPipeError:  # the child died before reading the model
        pass
    finally:
        if child.poll() is None:
            child.kill()
        child.wait()
        child.stdout.close()
    if result is not None:
        return result
    if best is None:
        return _Run("time_limit", "stopped at the time limit (HiGHS overran it) with no solution")
    return _Run(
        "time_limit",
        "stopped at the time limit (HiGHS overran it): best reported solution",
        best,
        _value(problem, best),
        bound,
    )


class _HighsBackend:
    """Thin holder of a ``highspy.Highs`` loaded with the problem: LP relaxation, then the MILP."""

    name = "highs"

    def __init__(self, problem: Problem, options: dict[str, object]):
        self.problem, self.options = problem, options
        self.h = _highs(problem, options)  # no names: to_highs has them
        self.version = f"{self.h.versionMajor()}.{self.h.versionMinor()}.{self.h.versionPatch()}"

    def relax(self, time_limit: float) -> _Run:
        self.h.setOptionValue("solve_relaxation", True)
        self.h.setOptionValue("time_limit", time_limit)
        self.h.run()
        status, text = _highs_status(self.h)
        if status != "optimal":
            return _Run(status, text)
        sol = self.h.getSolution()
        # HiGHS row duals are d(objective)/d(row activity bound) in the solver's sense.
        dual = np.asarray(sol.row_dual) if sol.dual_valid else None
        x = np.asarray(sol.col_value)
        return _Run(status, text, x, self.h.getInfo().objective_function_value, row_dual=dual)

    def mip(self, time_limit: float, start: np.ndarray | None) -> _Run:
        if self.problem.n_cols < GUARD_COLS:
            # a fresh Highs: self.h holds the LP solution, which HiGHS would take as a start
            return _highs_mip(_highs(self.problem, self.options), time_limit, start)
        return _guarded_mip(self.problem, self.options, time_limit, start)


# ------------------------------------------------------------------------------------------ CBC, PuLP


def _col_names(problem: Problem) -> tuple[str, ...]:
    if problem.col_names is not None:
        return tuple(problem.col_names)
    return tuple(f"c{j}" for j in range(problem.n_cols))


def _row_names(problem: Problem) -> tuple[str, ...]:
    if problem.row_names is not None:
        return tuple(problem.row_names)
    return tuple(f"r{i}" for i in range(problem.n_rows))


def to_pulp(problem: Problem) -> pulp.LpProblem:
    """The problem as a PuLP ``LpProblem`` with the same columns, rows and names (for CBC, ``.lp``).

    Built in bulk: one ``LpAffineExpression`` per row from prebuilt (variable, coefficient) pairs.
    PuLP replaces ``[]`` and spaces in names by ``_``. A ranged row (both bounds finite and
    different) becomes two constraints, ``<name>_lower`` and ``<name>_upper``; a free row is left out.
    """
    return _pulp_problem(problem)[0]


def _pulp_variables(problem: Problem) -> list[pulp.LpVariable]:
    names = _col_names(problem)
    lower, upper = problem.col_lower.tolist(), problem.col_upper.tolist()
    integer = np.asarray(problem.integrality, dtype=bool).tolist()
    variables = []
    for j, name in enumerate(names):
        lo = lower[j] if math.isfinite(lower[j]) else None
        up = upper[j] if math.isfinite(upper[j]) else None
        if integer[j] and lo == 0 and up == 1:
            variables.append(pulp.LpVariable(name, cat=pulp.LpBinary))
        else:
            cat = pulp.LpInteger if integer[j] else pulp.LpContinuous
            variables.append(pulp.LpVariable(name, lo, up, cat=cat))
    return variables


def _pulp_problem(
    problem: Problem,
) -> tuple[pulp.LpProblem, list[pulp.LpVariable], list[list[pulp.LpConstraint]]]:
    """The PuLP problem, its variables, and per row the constraints that stand for it (0 to 2)."""
    prob = pulp.LpProblem(problem.name, pulp.LpMinimize if problem.sense == 1 else pulp.LpMaximize)
    variables = _pulp_variables(problem)
    nz = np.flatnonzero(problem.c)
    prob.setObjective(
        pulp.LpAffineExpression(
            list(zip([variables[i] for i in nz], problem.c[nz].tolist(), strict=True)),
            constant=float(problem.offset),
        )
    )
    csr = problem.A.tocsr()
    indptr, indices, data = csr.indptr.tolist(), csr.indices.tolist(), csr.data.tolist()
    constraints = []
    for r, row_name in enumerate(_row_names(problem)):
        terms = [
            (variables[j], c)
            for j, c in zip(
                indices[indptr[r] : indptr[r + 1]], data[indptr[r] : indptr[r + 1]], strict=True
            )
        ]
        lower, upper = float(problem.row_lower[r]), float(problem.row_upper[r])
        if lower == upper:
            sides = [(pulp.LpConstraintEQ, lower, row_name)]
        elif math.isfinite(lower) and math.isfinite(upper):
            sides = [
                (pulp.LpConstraintGE, lower, f"{row_name}_lower"),
                (pulp.LpConstraintLE, upper, f"{row_name}_upper"),
            ]
        elif math.isfinite(lower):
            sides = [(pulp.LpConstraintGE, lower, row_name)]
        elif math.isfinite(upper):
            sides = [(pulp.LpConstraintLE, upper, row_name)]
        else:
            sides = []
        row = []
        for sense, rhs, name in sides:
            con = pulp.LpConstraint(pulp.LpAffineExpression(terms), sense, name, rhs)
            prob.addConstraint(con)
            row.append(con)
        constraints.append(row)
    prob.addVariables(variables)
    return prob, variables, constraints


class _CbcBackend:
    """Thin holder of the PuLP problem solved by CBC: LP relaxation (``-initialSolve``), then the MILP.

    PuLP does not return CBC's best bound, so a proven-optimal run reports ``bound`` =
    objective - mip_gap x |objective| (CBC's stopping rule; :func:`solve` then takes the better of
    it and the LP bound) and a time-limited run no bound.
    """

    name = "cbc"

    def __init__(self, problem: Problem, mip_gap: float, threads: int, seed: int):
        self.problem, self.mip_gap, self.threads, self.seed = problem, mip_gap, threads, seed
        self.prob, self.vars, self.cons = _pulp_problem(problem)
        self.path = shutil.which("cbc") or pulp.apis.coin_api.pulp_cbc_path
        self.version = f"CBC via PuLP {pulp.__version__}"

    def _solver(self, mip: bool, time_limit: float, warm: bool) -> pulp.COIN_CMD:
        return pulp.COIN_CMD(
            path=self.path,
            mip=mip,
            msg=False,
            timeLimit=max(1, math.ceil(time_limit)),
            gapRel=self.mip_gap,
            threads=self.threads,
            warmStart=warm,
            options=[f"randomCbcSeed {self.seed + 1}", f"randomSeed {self.seed + 1}"],
        )

    def relax(self, time_limit: float) -> _Run:
        try:
            self.prob.solve(self._solver(False, time_limit, False))
        except pulp.PulpSolverError as exc:  # pragma: no cover - CBC crash
            return _Run("error", str(exc))
        text = pulp.LpStatus[self.prob.status]
        if self.prob.status != pulp.LpStatusOptimal:
            status = {pulp.LpStatusInfeasible: "infeasible", pulp.LpStatusUnbounded: "unbounded"}
            return _Run(status.get(self.prob.status, "error"), text)
        x = np.array([v.varValue or 0.0 for v in self.vars])
        dual = np.array([sum(c.pi or 0.0 for c in row) for row in self.cons])
        return _Run("optimal", text, x, _value(self.problem, x), row_dual=dual)

    def mip(self, time_limit: float, start: np.ndarray | None) -> _Run:
        if start is not None:
            integer = np.asarray(self.problem.integrality, dtype=bool).tolist()
            for v, value, is_int in zip(self.vars, start.tolist(), integer, strict=True):
                v.setInitialValue(round(value) if is_int else value, check=False)
        limit = max(1, math.ceil(time_limit))
        t0 = time.perf_counter()
        try:
            self.prob.solve(self._solver(True, time_limit, start is not None))
        except pulp.PulpSolverError as exc:  # pragma: no cover - CBC crash
            return _Run("error", str(exc))
        text = f"{pulp.LpStatus[self.prob.status]} / {pulp.LpSolution[self.prob.sol_status]}"
        if self.prob.status == pulp.LpStatusInfeasible:
            # PuLP reads CBC's "stopped on time, no solution" as Infeasible / No Solution Found
            ran_out = self.prob.sol_status == pulp.LpSolutionNoSolutionFound and (
                time.perf_counter() - t0 >= 0.9 * limit
            )
            return _Run("time_limit" if ran_out else "infeasible", text)
        if self.prob.status == pulp.LpStatusUnbounded:
            return _Run("unbounded", text)
        if self.prob.sol_status not in (pulp.LpSolutionOptimal, pulp.LpSolutionIntegerFeasible):
            return _Run(
                "time_limit" if self.prob.status == pulp.LpStatusNotSolved else "error", text
            )
        x = np.array([v.varValue or 0.0 for v in self.vars])
        status = "optimal" if self.prob.sol_status == pulp.LpSolutionOptimal else "time_limit"
        obj = _value(self.problem, _clean(self.problem, x))
        bound = (
            obj - self.problem.sense * self.mip_gap * abs(obj) if status == "optimal" else math.nan
        )
        return _Run(status, text, x, obj, bound)


_Backend = _HighsBackend | _CbcBackend
