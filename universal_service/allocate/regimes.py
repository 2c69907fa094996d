"""The four allocation regimes: lots (分片包干), reverse auction, levy-financed fund, shared network."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import networkx as nx
import numpy as np
import pandas as pd
from scipy import sparse

from .. import milp

#: Most contiguity cuts rounds of the ``lots`` assignment before it reports ``time_limit``.
MAX_CUT_ROUNDS = 200


@dataclass
class Outcome:
    """One regime's result: per district and operator, who holds the obligation and the money.

    Arrays are ``(district, operator)`` unless said otherwise; money in CNY (NPV).

    Attributes
    ----------
    assigned : ndarray of float
        1 where the operator holds the district's obligation (every operator, jointly, in
        ``shared``), 0 elsewhere; NaN when the regime has no solution.
    cost : ndarray
        NPV cost the operator bears building and running its part [CNY].
    need : ndarray
        Its subsidy need there: cost minus revenue at the regulated tariff [CNY].
    subsidy : ndarray
        Public money it receives [CNY].
    levy : ndarray, shape (operator,)
        Levy it pays into the fund [CNY, NPV].
    status : str
        "optimal" (an assignment MILP solved to optimality), "infeasible", "time_limit", or
        "rule" (a rule applied: nothing was optimised, so nothing is proved optimal).
    attrs : dict
        Regime-specific figures (levy rate, clearing percentage, unsold districts, ...).
    """

    assigned: np.ndarray
    cost: np.ndarray
    need: np.ndarray
    subsidy: np.ndarray
    levy: np.ndarray
    status: str
    attrs: dict[str, Any] = field(default_factory=dict)

    @property
    def net_burden(self) -> np.ndarray:
        """What each operator bears [CNY, NPV]: its need where it serves, less subsidy, plus levy."""
        return np.nansum(self.need - self.subsidy, axis=0) + self.levy


def _empty(n_d: int, n_o: int, status: str, **attrs: Any) -> Outcome:
    nan = np.full((n_d, n_o), np.nan)
    return Outcome(nan, nan, nan, nan, np.full(n_o, np.nan), status, dict(attrs))


def _argmin_rows(primary: np.ndarray, secondary: np.ndarray) -> np.ndarray:
    """Per row, the column of the least ``primary`` (ties: least ``secondary``, then first); -1
    where no column is finite."""
    out = np.full(primary.shape[0], -1)
    for d in range(primary.shape[0]):
        ok = np.flatnonzero(np.isfinite(primary[d]))
        if ok.size:
            out[d] = ok[np.lexsort((ok, secondary[d, ok], primary[d, ok]))[0]]
    return out


def _one_hot(choice: np.ndarray, n_o: int) -> np.ndarray:
    a = np.zeros((choice.size, n_o))
    ok = choice >= 0
    a[np.flatnonzero(ok), choice[ok]] = 1.0
    return a


def least_cost(cost: np.ndarray, need: np.ndarray) -> Outcome:
    """Each district to the operator that serves it at least NPV cost (ties: least need).

    The efficient benchmark of every regime's cost of fairness; no subsidy, no levy.
    """
    a = _one_hot(_argmin_rows(cost, need), cost.shape[1])
    return Outcome(
        a, a * np.nan_to_num(cost), a * np.nan_to_num(need), 0 * a, np.zeros(cost.shape[1]), "rule"
    )


# --------------------------------------------------------------------------------------------
# lots: the generalized assignment of 分片包干
# --------------------------------------------------------------------------------------------


def _lots_problem(
    cost: np.ndarray, need: np.ndarray, ref: np.ndarray, tol: float, elastic: bool
) -> tuple[milp.Problem, np.ndarray]:
    """The assignment MILP over the feasible (district, operator) pairs; columns ``pairs``."""
    n_d, n_o = cost.shape
    pairs = np.argwhere(np.isfinite(cost) & np.isfinite(need))
    d, o = pairs[:, 0], pairs[:, 1]
    n_x = len(pairs)
    rows, cols, vals, lo, hi, names = [], [], [], [], [], []
    for i in range(n_d):  # each district once
        j = np.flatnonzero(d == i)
        rows += [len(lo)] * j.size
        cols += list(j)
        vals += [1.0] * j.size
        lo.append(1.0)
        hi.append(1.0)
        names.append(f"assign[{i}]")
    scale = max(float(np.abs(need[d, o]).sum()), 1.0)
    n_s = 0
    for k in range(n_o):
        for side, share in (("upper", ref[k] + tol), ("lower", ref[k] - tol)):
            if side == "upper" and share >= 1:
                continue
            if side == "lower" and share <= 0:
                continue
            # burden_k - share * total burden, on the upper or lower side of 0
            coef = need[d, o] * ((o == k) - share) / scale
            r = len(lo)
            rows += [r] * n_x
            cols += list(range(n_x))
            vals += list(coef)
            if elastic:  # a slack column lets the row move, at a price
                rows.append(r)
                cols.append(n_x + n_s)
                vals.append(-1.0 if side == "upper" else 1.0)
                n_s += 1
            lo.append(-np.inf if side == "upper" else 0.0)
            hi.append(0.0 if side == "upper" else np.inf)
            names.append(f"burden_{side}[{k}]")
    n = n_x + n_s
    c = np.r_[cost[d, o] / scale, np.zeros(n_s)]
    if elastic:  # closest to fair first, cost only as a tie-break
        c = np.r_[np.zeros(n_x) + 1e-6 * cost[d, o] / scale, np.ones(n_s)]
    A = sparse.csc_matrix((vals, (rows, cols)), shape=(len(lo), n))
    problem = milp.Problem(
        c=c,
        A=A,
        row_lower=np.array(lo),
        row_upper=np.array(hi),
        col_lower=np.zeros(n),
        col_upper=np.r_[np.ones(n_x), np.full(n_s, np.inf)],
        integrality=np.r_[np.ones(n_x, bool), np.zeros(n_s, bool)],
        row_names=tuple(names),
        name="lots",
    )
    return problem, pairs


def _contiguity_cuts(
    x: np.ndarray, pairs: np.ndarray, adjacency: nx.Graph, n_o: int
) -> list[tuple[list[int], list[int]]]:
    """Cuts for operators whose districts fall apart: for a component C of operator k and a
    district j of k outside C, ``x[i,k] + x[j,k] - sum_{n in N(C)} x[n,k] <= 1`` (i in C)."""
    col = {(int(d), int(o)): j for j, (d, o) in enumerate(pairs)}
    cuts = []
    for k in range(n_o):
        mine = [int(d) for (d, o), v in zip(pairs, x, strict=True) if o == k and v > 0.5]
        comps = list(nx.connected_components(adjacency.subgraph(mine)))
        if len(comps) < 2:
            continue
        for comp in comps:
            others = sorted(set(mine) - comp)
            ring = {n for c in comp for n in adjacency[c]} - comp
            i, j = min(comp), others[0]
            plus = [col[(i, k)], col[(j, k)]]
            minus = [col[(n, k)] for n in sorted(ring) if (n, k) in col]
            cuts.append((plus, minus))
    return cuts


def lots(
    cost: np.ndarray,
    need: np.ndarray,
    ref: np.ndarray,
    tolerance: float,
    *,
    adjacency: nx.Graph | None = None,
    solve_kw: dict[str, Any] | None = None,
    names: Sequence[str] = (),
) -> Outcome:
    """分片包干: give each district to one operator at least total cost, burdens kept fair.

    A generalized assignment MILP: binary ``x[d, o]`` over the pairs where operator ``o`` can
    meet district ``d``'s obligation; each district assigned once; minimise total NPV cost
    ``sum cost[d, o] x[d, o]`` subject to, for every operator, its burden share (the subsidy need
    of its districts over the total) within ``tolerance`` of its reference share:
    ``need_o - (ref_o + tol) B <= 0 <= need_o - (ref_o - tol) B`` with ``B`` the total need, both
    linear in ``x``. With ``adjacency``, each operator's districts must also be connected in it,
    enforced by cuts added until the solution is contiguous (every cut is valid for every
    contiguous assignment, so the final solution is optimal among them).

    Parameters
    ----------
    cost, need : ndarray, shape (district, operator)
        Stand-alone NPV cost and subsidy need [CNY]; NaN where the operator cannot serve.
    ref : ndarray, shape (operator,)
        Reference shares (sum 1).
    tolerance : float
        Allowed deviation of each burden share [share points, e.g. 0.1 = 10 points].
    adjacency : networkx.Graph, optional
        District adjacency on indices 0..D-1.
    solve_kw : dict, optional
        Passed to :func:`universal_service.milp.solve`.
    names : sequence of str
        Operator ids, for the infeasibility message.

    Returns
    -------
    Outcome
        Status "optimal", or "infeasible" with ``attrs["infeasible_reason"]`` naming the binding
        fairness row and how close the fairest assignment gets.
    """
    n_d, n_o = cost.shape
    kw = dict(solve_kw or {})
    problem, pairs = _lots_problem(cost, need, ref, tolerance, elastic=False)
    cuts: list[tuple[list[int], list[int]]] = []
    for _ in range(MAX_CUT_ROUNDS):
        res = milp.solve(_with_cuts(problem, cuts), **kw)
        if res.status != "optimal" or adjacency is None:
            break
        new = _contiguity_cuts(res.x[: len(pairs)], pairs, adjacency, n_o)
        if not new:
            break
        cuts += new
    else:
        return _empty(n_d, n_o, "time_limit", infeasible_reason="contiguity cuts did not converge")
    if res.status != "optimal":
        if res.status == "infeasible":
            reason = _lots_diagnosis(cost, need, ref, tolerance, kw, names, bool(cuts))
            return _empty(n_d, n_o, "infeasible", infeasible_reason=reason)
        return _empty(n_d, n_o, res.status, infeasible_reason=res.message)
    a = np.zeros((n_d, n_o))
    take = res.x[: len(pairs)] > 0.5
    a[pairs[take, 0], pairs[take, 1]] = 1.0
    out = Outcome(
        a, a * np.nan_to_num(cost), a * np.nan_to_num(need), 0 * a, np.zeros(n_o), "optimal"
    )
    out.attrs.update(gap=float(res.gap), contiguity_cuts=len(cuts))
    return out


def _with_cuts(problem: milp.Problem, cuts: list[tuple[list[int], list[int]]]) -> milp.Problem:
    if not cuts:
        return problem
    n = len(problem.c)
    rows, cols, vals = [], [], []
    for r, (plus, minus) in enumerate(cuts):
        rows += [r] * (len(plus) + len(minus))
        cols += plus + minus
        vals += [1.0] * len(plus) + [-1.0] * len(minus)
    extra = sparse.csc_matrix((vals, (rows, cols)), shape=(len(cuts), n))
    return milp.Problem(
        c=problem.c,
        A=sparse.vstack([problem.A, extra]).tocsc(),
        row_lower=np.r_[problem.row_lower, np.full(len(cuts), -np.inf)],
        row_upper=np.r_[problem.row_upper, np.ones(len(cuts))],
        col_lower=problem.col_lower,
        col_upper=problem.col_upper,
        integrality=problem.integrality,
        row_names=None,
        name=problem.name,
    )


def _lots_diagnosis(
    cost: np.ndarray,
    need: np.ndarray,
    ref: np.ndarray,
    tol: float,
    kw: dict[str, Any],
    names: Sequence[str],
    contiguous: bool,
) -> str:
    """Why no fair assignment exists: the fairness row the fairest assignment misses most."""
    problem, pairs = _lots_problem(cost, need, ref, tol, elastic=True)
    res = milp.solve(problem, **kw)
    n_o = cost.shape[1]
    label = [names[k] if k < len(names) else str(k) for k in range(n_o)]
    extra = " (before the contiguity requirement)" if contiguous else ""
    if res.x is None:
        return f"no assignment of every district exists ({res.message})"
    x = res.x[: len(pairs)] > 0.5
    burden = np.zeros(n_o)
    np.add.at(burden, pairs[x, 1], need[pairs[x, 0], pairs[x, 1]])
    share = burden / burden.sum() if burden.sum() > 0 else burden * np.nan
    miss = np.abs(share - ref) - tol
    k = int(np.nanargmax(miss))
    return (
        f"no assignment of the {cost.shape[0]} districts keeps every operator's burden share "
        f"within +-{tol:g} of its reference share{extra}; the fairest one gives {label[k]} "
        f"{share[k]:.3f} against {ref[k]:.3f} (binding: {label[k]}'s burden-share row). Raise "
        "allocation.tolerance, change allocation.basis, or split large districts."
    )


# --------------------------------------------------------------------------------------------
# auction: least-subsidy reverse auction with a descending clock (CAF-II style)
# --------------------------------------------------------------------------------------------

#: Precision of the descending clock [percentage points]: bidders state exact exit points within
#: a round (intra-round bids), so the clock is resolved to this step.
CLOCK_STEP_PCT = 0.01


def bids(need: np.ndarray, markup: float, seed: int) -> np.ndarray:
    """Each operator's bid: its subsidy need (at least 0) times ``1 + m``, ``m ~ U(0, 2 markup)``.

    Markups are drawn for every (district, operator) pair in that order from
    ``numpy.random.default_rng(seed)``, so a bid does not depend on which pairs can serve.
    """
    m = np.random.default_rng(seed).uniform(0.0, 2.0 * markup, size=need.shape)
    return np.maximum(need, 0.0) * (1.0 + m)


def auction(
    cost: np.ndarray,
    need: np.ndarray,
    weight: np.ndarray,
    *,
    reserve: np.ndarray,
    budget: float | None,
    markup: float,
    seed: int,
) -> Outcome:
    """A least-subsidy reverse auction per district with a descending clock and a budget.

    The rule, after the FCC's CAF Phase II auction (Auction 903; FCC 16-64 and Public Notice
    FCC 18-6), simplified to one bid per operator and district:

    1. Districts whose reserve is at most 0 need no subsidy: the operator with the least need
       serves them unsubsidised ("market" districts, not auctioned).
    2. Bid ``b[d, o]`` (:func:`bids`) with weight ``W[d, o]`` (performance tier plus latency,
       :func:`~universal_service.allocate.footprint.bid_weight`); an operator bids only where
       ``b <= reserve``. Score ``s = 100 b / reserve + W`` (lower is better).
    3. The base clock percentage ``P`` starts at ``100 + 90`` (the largest weight) and descends.
       At ``P`` a bid's implied support is ``reserve * min(1, (P - W) / 100)``; an operator stays
       in while that covers its bid, i.e. while ``s <= P``.
    4. The clock stops at the first ``P`` (step :data:`CLOCK_STEP_PCT`) where the implied
       support of the best remaining bid in every district, summed, is within the budget.
       Districts where no bidder remains by then are unsold.
    5. A district with one bidder left at the stop is won at its implied support at ``P``; with
       more, the clock goes on there until one is left: the winner (lowest score; ties: lower
       bid, then operator order) is paid its implied support at the second-lowest score.

    So no district pays above its reserve, and the payments sum to at most the budget.

    Parameters
    ----------
    cost, need : ndarray, shape (district, operator)
        Stand-alone NPV cost and subsidy need [CNY]; NaN where the operator cannot serve.
    weight : ndarray, shape (district, operator)
        CAF-II weights [percentage points].
    reserve : ndarray, shape (district,)
        Reserve prices [CNY].
    budget : float or None
        Most the auction may pay in total [CNY]; None: the sum of positive reserves.
    markup : float
        Mean markup of bids over need.
    seed : int

    Returns
    -------
    Outcome
        ``attrs``: ``clearing_pct`` (P at the stop), ``budget``, ``unsold`` and ``market``
        (district indices), ``reserve`` (per district).
    """
    n_d, n_o = cost.shape
    b = bids(need, markup, seed)
    ok = np.isfinite(need) & np.isfinite(cost)
    auctioned = np.isfinite(reserve) & (reserve > 0)
    r = np.where(auctioned, reserve, np.nan)
    qualified = ok & auctioned[:, None] & (b <= r[:, None])
    score = np.where(qualified, 100.0 * b / np.where(auctioned, r, 1.0)[:, None] + weight, np.inf)
    win = _argmin_rows(np.where(qualified, score, np.nan), np.where(qualified, b, np.nan))
    has = win >= 0
    s1 = np.where(has, score[np.arange(n_d), np.maximum(win, 0)], np.inf)
    w1 = np.where(has, weight[np.arange(n_d), np.maximum(win, 0)], 0.0)
    second = np.sort(score, axis=1)[:, 1] if n_o > 1 else np.full(n_d, np.inf)
    rr = np.nan_to_num(r)
    p0 = 100.0 + 90.0
    total = float(rr.sum()) if budget is None else float(budget)

    def support(p: float | np.ndarray) -> np.ndarray:
        return rr * np.clip((p - w1) / 100.0, 0.0, 1.0)

    def demand(p: float) -> float:
        return float(support(p)[s1 <= p].sum())

    # demand(P) only falls as P descends: find the first grid point within the budget by bisection
    hi_k, n_steps = 0, int(round(p0 / CLOCK_STEP_PCT))
    if demand(p0) > total + 1e-6:
        lo_k, hi_k = 0, n_steps
        while hi_k - lo_k > 1:
            mid = (lo_k + hi_k) // 2
            if demand(p0 - mid * CLOCK_STEP_PCT) <= total + 1e-6:
                hi_k = mid
            else:
                lo_k = mid
    p_star = p0 - hi_k * CLOCK_STEP_PCT
    sold = has & (s1 <= p_star)
    price = np.where(second <= p_star, np.minimum(second, p_star), p_star)
    pay = np.where(sold, support(price), 0.0)
    choice = np.where(sold, win, -1)
    market = np.flatnonzero(~auctioned & ok.any(axis=1))
    if market.size:
        mchoice = _argmin_rows(need[market], cost[market])
        choice[market] = mchoice
    a = _one_hot(choice, n_o)
    sub = a * pay[:, None]
    out = Outcome(a, a * np.nan_to_num(cost), a * np.nan_to_num(need), sub, np.zeros(n_o), "rule")
    unsold = np.flatnonzero(choice < 0)
    out.attrs.update(
        clearing_pct=float(p_star),
        budget=total,
        unsold=unsold.tolist(),
        market=market.tolist(),
        reserve=rr,
        bids=np.where(qualified, b, np.nan),
    )
    return out


# --------------------------------------------------------------------------------------------
# fund and shared network
# --------------------------------------------------------------------------------------------


def fund(cost: np.ndarray, need: np.ndarray, levy_base: np.ndarray) -> Outcome:
    """A universal-service fund: a levy on revenue pays each district's net cost to its least-cost
    provider.

    Each district goes to the operator with the least subsidy need (ties: least cost, then
    operator order), which receives ``max(need, 0)`` from the fund. The levy rate is the one that
    balances the fund: total payments over the total levy base; each operator pays the rate
    times its base.

    Parameters
    ----------
    cost, need : ndarray, shape (district, operator)
        Stand-alone NPV cost and subsidy need [CNY]; NaN where the operator cannot serve.
    levy_base : ndarray, shape (operator,)
        Revenue the levy applies to [CNY, NPV over the horizon].

    Returns
    -------
    Outcome
        ``attrs["levy_rate"]``: the balancing rate [share of revenue].
    """
    a = _one_hot(_argmin_rows(need, cost), cost.shape[1])
    paid = a * np.maximum(np.nan_to_num(need), 0.0)
    total_base = float(np.sum(levy_base))
    rate = float(paid.sum()) / total_base if total_base > 0 else np.nan
    out = Outcome(
        a, a * np.nan_to_num(cost), a * np.nan_to_num(need), paid, rate * levy_base, "rule"
    )
    out.attrs["levy_rate"] = rate
    return out


def shared(
    district_cost: np.ndarray,
    district_need: np.ndarray,
    charges: np.ndarray,
) -> Outcome:
    """One shared rural network: built once, its net cost charged to operators by a sharing rule.

    Parameters
    ----------
    district_cost, district_need : ndarray, shape (district,)
        The network's NPV cost and subsidy need per district [CNY] (the grand coalition's).
    charges : ndarray, shape (operator,)
        Each operator's charge of the total need (Shapley value, nucleolus or a proportional
        rule) [CNY]; the network's cost in each district is split in the same proportions.

    Returns
    -------
    Outcome
        Every operator holds every district jointly (``assigned`` 1); no subsidy, no levy.
    """
    n_d, n_o = district_cost.size, charges.size
    total = float(np.nansum(charges))
    w = charges / total if total != 0 else np.full(n_o, 1.0 / n_o)
    a = np.ones((n_d, n_o))
    need = district_need[:, None] * w[None, :]
    return Outcome(a, district_cost[:, None] * w[None, :], need, 0 * a, np.zeros(n_o), "rule")


def in_core(charges: pd.Series, cost: Callable[[frozenset[str]], float], tol: float = 1e-6) -> bool:
    """Whether ``charges`` lie in the core of the cost game: efficient and no coalition is charged
    more than its stand-alone cost (checked over every coalition; up to 16 players)."""
    players = list(charges.index)
    grand = cost(frozenset(players))
    scale = max(abs(grand), 1.0)
    if abs(float(charges.sum()) - grand) > tol * scale:
        return False
    for mask in range(1, 2 ** len(players) - 1):
        s = frozenset(p for i, p in enumerate(players) if mask >> i & 1)
        if float(charges[list(s)].sum()) > cost(s) + tol * scale:
            return False
    return True
