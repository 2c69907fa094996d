"""Allocation regimes on small instances, checked by brute force and by their invariants."""

from __future__ import annotations

import itertools

import networkx as nx
import numpy as np
import pandas as pd
import pytest

from universal_service.allocate import auction, fund, lots, reference_shares, shared
from universal_service.allocate.regimes import bids, in_core, least_cost


def _instance(seed: int, n_d: int = 6, n_o: int = 3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    cost = rng.uniform(10.0, 100.0, size=(n_d, n_o))
    need = cost - rng.uniform(0.0, 8.0, size=(n_d, n_o))  # revenue below cost
    return cost, need


def _brute_lots(cost, need, ref, tol, adjacency=None):
    """Least total cost over every assignment meeting the fairness rows (and contiguity)."""
    n_d, n_o = cost.shape
    best, best_choice = np.inf, None
    for choice in itertools.product(range(n_o), repeat=n_d):
        c = np.array(choice)
        burden = np.array([need[c == k, k].sum() for k in range(n_o)])
        share = burden / burden.sum()
        if np.any(np.abs(share - ref) > tol + 1e-9):
            continue
        if adjacency is not None and any(
            len(s := [d for d in range(n_d) if c[d] == k]) > 1
            and not nx.is_connected(adjacency.subgraph(s))
            for k in range(n_o)
        ):
            continue
        total = cost[np.arange(n_d), c].sum()
        if total < best - 1e-9:
            best, best_choice = total, c
    return best, best_choice


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("tol", [0.05, 0.15, 1.0])
def test_lots_matches_brute_force(seed: int, tol: float) -> None:
    cost, need = _instance(seed)
    ref = np.array([0.5, 0.3, 0.2])
    out = lots(cost, need, ref, tol)
    best, _ = _brute_lots(cost, need, ref, tol)
    if not np.isfinite(best):
        assert out.status == "infeasible"
        assert "burden-share row" in out.attrs["infeasible_reason"]
        return
    assert out.status == "optimal"
    assert np.all(out.assigned.sum(axis=1) == 1)  # each district exactly once
    assert out.cost.sum() == pytest.approx(best, rel=1e-9)
    share = out.net_burden / out.net_burden.sum()
    assert np.all(np.abs(share - ref) <= tol + 1e-9)
    # the unconstrained least-cost assignment is never dearer than the fair one
    assert least_cost(cost, need).cost.sum() <= out.cost.sum() + 1e-9


@pytest.mark.parametrize("seed", range(4))
def test_lots_contiguity_matches_brute_force(seed: int) -> None:
    cost, need = _instance(seed + 10, n_d=7)
    adjacency = nx.path_graph(7)  # a row of districts: contiguous = an interval
    ref = np.array([0.5, 0.3, 0.2])
    out = lots(cost, need, ref, 0.2, adjacency=adjacency)
    best, _ = _brute_lots(cost, need, ref, 0.2, adjacency)
    if not np.isfinite(best):
        assert out.status == "infeasible"
        return
    assert out.status == "optimal"
    assert out.cost.sum() == pytest.approx(best, rel=1e-9)
    for k in range(3):
        mine = np.flatnonzero(out.assigned[:, k] > 0.5)
        if mine.size > 1:
            assert nx.is_connected(adjacency.subgraph(mine.tolist()))


def test_lots_infeasible_names_the_binding_operator() -> None:
    cost, need = _instance(1, n_d=3)
    out = lots(cost, need, np.array([0.9, 0.05, 0.05]), 0.0, names=["big", "mid", "small"])
    assert out.status == "infeasible"
    reason = out.attrs["infeasible_reason"]
    assert "allocation.tolerance" in reason
    assert any(f"{n}'s burden-share row" in reason for n in ("big", "mid", "small"))
    assert np.isnan(out.assigned).all()


def test_lots_skips_operators_that_cannot_serve() -> None:
    cost, need = _instance(2, n_d=4)
    cost[0, 0] = need[0, 0] = np.nan
    out = lots(cost, need, np.array([0.4, 0.3, 0.3]), 1.0)
    assert out.assigned[0, 0] == 0 and out.assigned[0].sum() == 1


def test_auction_hand_example() -> None:
    """One district, two bidders, no markup: reserve 100, needs 60 and 80.

    Weights 0 (fiber) and 45 (baseline). Scores: 100*60/100 + 0 = 60 and 100*80/100 + 45 = 125.
    The budget (1000) holds at the start (190), both bidders are in, the clock goes on until the
    second exits at 125: the winner is paid reserve * min(1, (125 - 0) / 100) = 100 (capped).
    With the second's weight 0 it exits at 80 and the winner gets 100 * 80 / 100 = 80.
    """
    cost = np.array([[70.0, 90.0]])
    need = np.array([[60.0, 80.0]])
    out = auction(
        cost,
        need,
        np.array([[0.0, 45.0]]),
        reserve=np.array([100.0]),
        budget=1000.0,
        markup=0.0,
        seed=0,
    )
    assert out.assigned.tolist() == [[1.0, 0.0]]
    assert out.subsidy.sum() == pytest.approx(100.0)
    out = auction(
        cost,
        need,
        np.array([[0.0, 0.0]]),
        reserve=np.array([100.0]),
        budget=1000.0,
        markup=0.0,
        seed=0,
    )
    assert out.subsidy.sum() == pytest.approx(80.0)
    # a budget of 70 stops the clock at P with 100 * (P - 0) / 100 = 70: the winner is paid 70
    out = auction(
        cost,
        need,
        np.array([[0.0, 0.0]]),
        reserve=np.array([100.0]),
        budget=70.0,
        markup=0.0,
        seed=0,
    )
    assert out.subsidy.sum() == pytest.approx(70.0, abs=0.02)
    assert out.attrs["clearing_pct"] == pytest.approx(70.0, abs=0.02)
    # below the winner's own score (60) nobody is left: unsold
    out = auction(
        cost,
        need,
        np.array([[0.0, 0.0]]),
        reserve=np.array([100.0]),
        budget=50.0,
        markup=0.0,
        seed=0,
    )
    assert out.subsidy.sum() == 0 and out.attrs["unsold"] == [0]


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("budget_share", [None, 1.0, 0.6, 0.3])
def test_auction_never_pays_above_reserve_or_budget(seed: int, budget_share: float | None) -> None:
    cost, need = _instance(seed, n_d=12)
    weight = np.random.default_rng(seed).choice([0.0, 15.0, 45.0, 90.0], size=cost.shape)
    reserve = 1.2 * need.min(axis=1)
    budget = None if budget_share is None else budget_share * reserve.sum()
    out = auction(cost, need, weight, reserve=reserve, budget=budget, markup=0.1, seed=seed)
    paid = out.subsidy.sum(axis=1)
    assert np.all(paid <= reserve + 1e-9)
    assert paid.sum() <= (reserve.sum() if budget is None else budget) + 1e-6
    assert np.all(out.assigned.sum(axis=1) <= 1)
    b = bids(need, 0.1, seed)
    won = out.assigned > 0.5
    assert np.all(paid[won.any(axis=1)] >= b[won] - 1e-9)  # a winner is paid at least its bid
    unsold = out.attrs["unsold"]
    assert np.all(out.assigned[unsold] == 0)


def test_auction_is_seeded() -> None:
    cost, need = _instance(3, n_d=8)
    kw = {"reserve": 1.2 * need.min(axis=1), "budget": None, "markup": 0.2}
    a = auction(cost, need, np.zeros_like(cost), seed=7, **kw)
    b = auction(cost, need, np.zeros_like(cost), seed=7, **kw)
    np.testing.assert_array_equal(a.subsidy, b.subsidy)


def test_auction_serves_profitable_districts_unsubsidised() -> None:
    cost = np.array([[50.0, 40.0], [60.0, 70.0]])
    need = np.array([[-5.0, -8.0], [30.0, 40.0]])
    out = auction(
        cost,
        need,
        np.zeros_like(cost),
        reserve=np.array([-9.6, 36.0]),
        budget=None,
        markup=0.0,
        seed=0,
    )
    assert out.assigned[0].tolist() == [0.0, 1.0]  # the least need, no subsidy
    assert out.subsidy[0].sum() == 0
    assert out.attrs["market"] == [0]


@pytest.mark.parametrize("seed", range(4))
def test_fund_balances(seed: int) -> None:
    cost, need = _instance(seed, n_d=9)
    need[0] = -3.0  # a profitable district: no payment
    base = np.array([700.0, 350.0, 270.0])
    out = fund(cost, need, base)
    assert out.levy.sum() == pytest.approx(out.subsidy.sum())
    assert out.attrs["levy_rate"] == pytest.approx(out.subsidy.sum() / base.sum())
    np.testing.assert_allclose(out.levy / base, out.attrs["levy_rate"])
    chosen = out.assigned.argmax(axis=1)
    np.testing.assert_array_equal(need[np.arange(9), chosen], need.min(axis=1))
    assert chosen[0] == cost[0].argmin()  # need tied in district 0: the least cost serves it
    assert out.subsidy[0].sum() == 0


def test_shared_splits_in_the_charges_proportions() -> None:
    out = shared(np.array([100.0, 50.0]), np.array([80.0, 40.0]), np.array([60.0, 60.0]))
    assert out.cost.sum() == pytest.approx(150.0)
    np.testing.assert_allclose(out.net_burden, [60.0, 60.0])
    assert out.subsidy.sum() == 0


def test_in_core() -> None:
    c = {frozenset("a"): 6.0, frozenset("b"): 6.0, frozenset("ab"): 10.0}
    assert in_core(pd.Series({"a": 5.0, "b": 5.0}), c.__getitem__)
    assert not in_core(pd.Series({"a": 7.0, "b": 3.0}), c.__getitem__)  # a pays above 6
    assert not in_core(pd.Series({"a": 4.0, "b": 4.0}), c.__getitem__)  # not efficient


def test_reference_shares_of_the_bundled_operators() -> None:
    ops = pd.read_csv("data/qiannan/operators.csv")
    rev = reference_shares(ops, ["cmcc", "ct", "cu"], "revenue")
    # 2016 annual reports: 708.4, 352.3 and 274.2 CNY bn (operators.csv)
    assert rev["cmcc"] == pytest.approx(708.4 / (708.4 + 352.3 + 274.2), rel=1e-6)
    assert rev.sum() == pytest.approx(1.0)
    prof = reference_shares(ops, ["cmcc", "ct", "cu"], "profit")
    assert prof["cu"] == pytest.approx(0.63 / (108.7 + 18.0 + 0.63), rel=1e-6)
    mix = reference_shares(ops, ["cmcc", "ct", "cu"], "mix", profit_weight=0.25)
    np.testing.assert_allclose(mix, 0.75 * rev + 0.25 * prof)
    loss = ops.assign(profit_cny=[1.0, -5.0, 1.0])
    assert reference_shares(loss, ["cmcc", "ct", "cu"], "profit")["ct"] == 0.0
