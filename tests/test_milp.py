"""Tests for milp: known optima of a tiny MILP and LP on both solvers, statuses, the PuLP export."""

from __future__ import annotations

import math

import numpy as np
import pulp
import pytest
from scipy import sparse

from universal_service import milp

INF = math.inf
SOLVERS = ("highs", "cbc")


def knapsack() -> milp.Problem:
    """max 5a + 4b + 3c s.t. 2a + 3b + c <= 5, binary: optimum 9 (a, b); LP relaxation 32/3."""
    return milp.Problem(
        c=np.array([5.0, 4.0, 3.0]),
        A=sparse.csc_matrix(np.array([[2.0, 3.0, 1.0]])),
        row_lower=np.array([-INF]),
        row_upper=np.array([5.0]),
        col_lower=np.zeros(3),
        col_upper=np.ones(3),
        integrality=np.ones(3, dtype=bool),
        sense=-1,
        col_names=("take[a]", "take[b]", "take[c]"),
        row_names=("capacity",),
        name="knapsack",
    )


def small_lp() -> milp.Problem:
    """min x + 2y + 1 s.t. x + y >= 2, x - y <= 1, x, y >= 0: optimum 3.5 at (1.5, 0.5), duals (1.5, -0.5)."""
    return milp.Problem(
        c=np.array([1.0, 2.0]),
        A=sparse.csc_matrix(np.array([[1.0, 1.0], [1.0, -1.0]])),
        row_lower=np.array([2.0, -INF]),
        row_upper=np.array([INF, 1.0]),
        col_lower=np.zeros(2),
        col_upper=np.full(2, INF),
        integrality=np.zeros(2, dtype=bool),
        offset=1.0,
    )


def facility_location(n: int = 150, m: int = 60, seed: int = 0) -> milp.Problem:
    """Non-metric uncapacitated facility location, costs uniform on [1000, 2000], site cost 3000: a
    wide LP gap no solver closes in a second (cf. Koerkel (1989), EJOR 39:157-173)."""
    rng = np.random.default_rng(seed)
    nx = n * m
    cols = np.r_[np.arange(nx), np.arange(nx), nx + np.tile(np.arange(m), n)]
    rows = np.r_[np.repeat(np.arange(n), m), n + np.arange(nx), n + np.arange(nx)]
    vals = np.r_[np.ones(2 * nx), -np.ones(nx)]
    return milp.Problem(
        c=np.r_[rng.integers(1000, 2001, nx).astype(float), np.full(m, 3000.0)],
        A=sparse.csc_matrix((vals, (rows, cols)), shape=(n + nx, nx + m)),
        row_lower=np.r_[np.ones(n), np.full(nx, -INF)],
        row_upper=np.r_[np.ones(n), np.zeros(nx)],
        col_lower=np.zeros(nx + m),
        col_upper=np.ones(nx + m),
        integrality=np.ones(nx + m, dtype=bool),
    )


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("lp_first", [False, True])
def test_tiny_milp_known_optimum(solver: str, lp_first: bool) -> None:
    result = milp.solve(knapsack(), solver=solver, mip_gap=0.0, lp_first=lp_first)
    assert result.solver == solver
    assert result.status == "optimal"
    assert result.objective == pytest.approx(9.0)
    assert list(result.x) == [1.0, 1.0, 0.0]
    assert result.bound == pytest.approx(9.0)
    assert result.gap == pytest.approx(0.0, abs=1e-9)
    if lp_first:
        assert result.lp_objective == pytest.approx(32 / 3)
        assert result.row_duals[0] == pytest.approx(4 / 3)  # LP: b is the fractional item
    else:
        assert math.isnan(result.lp_objective) and result.row_duals is None


@pytest.mark.parametrize("solver", SOLVERS)
def test_tiny_lp_known_optimum_and_duals(solver: str) -> None:
    result = milp.solve(small_lp(), solver=solver)
    assert result.status == "optimal"
    assert result.objective == pytest.approx(3.5) and result.bound == pytest.approx(3.5)
    np.testing.assert_allclose(result.x, [1.5, 0.5])
    np.testing.assert_allclose(result.row_duals, [1.5, -0.5])


@pytest.mark.parametrize("solver", SOLVERS)
def test_relaxation_of_a_milp(solver: str) -> None:
    result = milp.solve(knapsack(), solver=solver, relax=True)
    assert result.status == "optimal"
    assert result.objective == pytest.approx(32 / 3) == result.lp_objective
    np.testing.assert_allclose(result.x, [1.0, 2 / 3, 1.0])


@pytest.mark.parametrize("solver", SOLVERS)
def test_start_is_kept_when_the_solver_has_nothing_better(solver: str) -> None:
    problem = facility_location()
    n, m = 150, 60
    x0 = np.zeros(problem.n_cols)
    x0[np.arange(n) * m] = 1.0  # every client at facility 0
    x0[n * m] = 1.0
    seen = []

    def start(lp_x: np.ndarray | None) -> np.ndarray:
        seen.append(lp_x)
        return x0

    # 1 ms: HiGHS stops before the LP relaxation; CBC's shortest limit is 1 s, far too little
    result = milp.solve(problem, solver=solver, time_limit_s=1e-3, lp_first=True, start=start)
    assert result.status == "time_limit", result.message
    assert result.start_objective == pytest.approx(problem.c @ x0)
    assert result.objective <= result.start_objective + 1e-6
    if seen[0] is None:  # the LP relaxation did not finish: the start is all there is
        assert math.isnan(result.lp_objective)
        np.testing.assert_array_equal(result.x, x0)


@pytest.mark.parametrize("solver", SOLVERS)
def test_a_start_that_breaks_a_row_is_never_the_answer(solver: str) -> None:
    """All three items overfill the knapsack (weight 6 > 5) but are worth 12 > 9: the start must
    be dropped, not kept as "better than the solver's"."""
    result = milp.solve(knapsack(), solver=solver, lp_first=True, start=np.ones(3))
    assert result.status == "optimal"
    assert result.objective == pytest.approx(9.0)
    np.testing.assert_allclose(result.x, [1.0, 1.0, 0.0])
    assert math.isnan(result.start_objective)


def test_highs_reported_objective_is_checked_against_its_solution(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """HiGHS 1.16 once reported "Optimal" with an objective that was not its solution's (a
    fractional MIP start completed wrongly): such a run proves nothing, so the result keeps the
    solution at its true value, drops the solver's bound and is not "optimal"."""
    h = milp._highs(knapsack(), milp._highs_settings(10.0, 0.0, 1, 0, {}))
    run = milp._highs_mip(h, 10.0, None)
    assert run.status == "optimal" and run.objective == pytest.approx(9.0)
    assert milp._reported_value_matches(h, run.x, 9.0)
    assert not milp._reported_value_matches(h, run.x, 8.9)
    monkeypatch.setattr(milp, "_reported_value_matches", lambda *a: False)
    result = milp.solve(knapsack(), mip_gap=0.0, lp_first=True)
    assert result.status == "time_limit" and "not its solution's" in result.message
    assert result.objective == pytest.approx(9.0)
    assert result.bound == pytest.approx(32 / 3)  # the LP relaxation's bound only


@pytest.mark.parametrize("solver", SOLVERS)
def test_time_limited_solve_reports_time_limit(solver: str) -> None:
    result = milp.solve(facility_location(), solver=solver, time_limit_s=1e-3)
    assert result.status == "time_limit", result.message
    if result.x is not None:
        assert result.bound <= result.objective + 1e-6


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("relax", [False, True])
def test_infeasible_status(solver: str, relax: bool) -> None:
    problem = milp.Problem(
        c=np.array([1.0, 1.0]),
        A=sparse.csc_matrix(np.array([[1.0, 1.0]])),
        row_lower=np.array([3.0]),
        row_upper=np.array([INF]),
        col_lower=np.zeros(2),
        col_upper=np.ones(2),
        integrality=np.ones(2, dtype=bool),
    )
    result = milp.solve(problem, solver=solver, relax=relax)
    assert result.status == "infeasible"
    assert result.x is None and math.isnan(result.objective)
    result = milp.solve(problem, solver=solver, lp_first=True)
    assert result.status == "infeasible" and result.message.startswith("LP relaxation: ")


@pytest.mark.parametrize("solver", SOLVERS)
def test_unbounded_status(solver: str) -> None:
    problem = milp.Problem(  # max x + y s.t. x - y <= 1, x integer
        c=np.array([1.0, 1.0]),
        A=sparse.csc_matrix(np.array([[1.0, -1.0]])),
        row_lower=np.array([-INF]),
        row_upper=np.array([1.0]),
        col_lower=np.zeros(2),
        col_upper=np.full(2, INF),
        integrality=np.array([True, False]),
        sense=-1,
    )
    assert milp.solve(problem, solver=solver, relax=True).status == "unbounded"
    result = milp.solve(problem, solver=solver)
    if (
        solver == "highs"
    ):  # HiGHS's MIP presolve says "infeasible or unbounded": reported infeasible
        assert result.status == "infeasible" and "unbounded" in result.message.lower()
    else:
        assert result.status == "unbounded"
    assert result.x is None


def test_empty_problem_is_optimal() -> None:
    problem = milp.Problem(
        c=np.zeros(0),
        A=sparse.csc_matrix((0, 0)),
        row_lower=np.zeros(0),
        row_upper=np.zeros(0),
        col_lower=np.zeros(0),
        col_upper=np.zeros(0),
        integrality=np.zeros(0, dtype=bool),
        offset=2.0,
    )
    result = milp.solve(problem)
    assert result.status == "optimal" and result.objective == 2.0 and len(result.x) == 0


def test_problem_shapes_are_checked() -> None:
    with pytest.raises(ValueError, match="A has shape"):
        milp.Problem(
            c=np.zeros(2),
            A=sparse.csc_matrix((1, 3)),
            row_lower=np.zeros(1),
            row_upper=np.zeros(1),
            col_lower=np.zeros(2),
            col_upper=np.ones(2),
            integrality=np.zeros(2, dtype=bool),
        )


def test_to_pulp_has_the_same_rows_columns_and_names() -> None:
    problem = facility_location(6, 3)
    problem = milp.Problem(
        **{
            **problem.__dict__,
            "col_names": tuple(f"x[{j:03d}]" for j in range(problem.n_cols)),
            "row_names": tuple(f"row[{i:03d}]" for i in range(problem.n_rows)),
            "name": "ufl",
        }
    )
    prob = milp.to_pulp(problem)
    highs = milp.to_highs(problem)
    assert prob.name == "ufl" and prob.sense == pulp.LpMinimize
    assert highs.getNumCol() == len(prob.variables()) == problem.n_cols
    assert highs.getNumRow() == len(prob.constraints) == problem.n_rows
    assert highs.getNumNz() == sum(len(c) for c in prob.constraints.values()) == problem.A.nnz
    translate = str.maketrans("[]", "__")  # PuLP's replacements; zero padding keeps the order
    lp = highs.getLp()
    assert [n.translate(translate) for n in lp.col_names_] == [v.name for v in prob.variables()]
    assert [n.translate(translate) for n in lp.row_names_] == list(prob.constraints)
    objective = {v.name: c for v, c in prob.objective.items()}
    assert objective == {
        n.translate(translate): c for n, c in zip(lp.col_names_, problem.c, strict=True)
    }
    assert all(
        v.cat == pulp.LpInteger and v.lowBound == 0 and v.upBound == 1 for v in prob.variables()
    )
    for i, con in enumerate(prob.constraints.values()):
        row = problem.A.getrow(i)
        assert {v.name: c for v, c in con.items()} == {
            f"x_{j:03d}_": c for j, c in zip(row.indices, row.data, strict=True)
        }


def test_to_pulp_splits_a_ranged_row_and_keeps_bounds() -> None:
    problem = milp.Problem(
        c=np.array([1.0, -1.0]),
        A=sparse.csc_matrix(np.array([[1.0, 1.0]])),
        row_lower=np.array([1.0]),
        row_upper=np.array([3.0]),
        col_lower=np.array([0.0, -2.0]),
        col_upper=np.array([INF, 4.0]),
        integrality=np.array([True, False]),
    )
    prob = milp.to_pulp(problem)
    assert list(prob.constraints) == ["r0_lower", "r0_upper"]
    x, y = prob.variables()
    assert (x.name, x.cat, x.lowBound, x.upBound) == ("c0", pulp.LpInteger, 0.0, None)
    assert (y.name, y.cat, y.lowBound, y.upBound) == ("c1", pulp.LpContinuous, -2.0, 4.0)
    for solver in SOLVERS:  # min x - y: y = 3 at the upper row, x = 0
        result = milp.solve(problem, solver=solver, mip_gap=0.0)
        assert result.objective == pytest.approx(-3.0)


def test_guarded_child_gives_the_same_result(monkeypatch: pytest.MonkeyPatch) -> None:
    in_process = milp.solve(knapsack(), mip_gap=0.0, time_limit_s=600.0)
    monkeypatch.setattr(milp, "GUARD_COLS", 0)  # the MILP in a spawned child
    child = milp.solve(knapsack(), mip_gap=0.0, time_limit_s=600.0)
    assert child.status == in_process.status == "optimal"
    assert child.objective == in_process.objective == pytest.approx(9.0)
    np.testing.assert_array_equal(child.x, in_process.x)


def test_cbc_is_used_without_highspy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(milp, "highspy", None)
    assert milp.solver_used("highs") == "cbc"
    result = milp.solve(knapsack(), mip_gap=0.0)
    assert result.solver == "cbc" and result.objective == pytest.approx(9.0)
