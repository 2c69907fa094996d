"""Greedy plans, local search, plan evaluation and the site-share bound, without any solver."""

from __future__ import annotations

import math

import numpy as np

from . import formulate, instance
from .formulate import Formulation
from .instance import TOL, Instance, Policy


def _village_argmin(inst: Instance, values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Per village, the option with the smallest masked value (lowest index on ties; -1: none).

    Options are sorted by village, so this is one ``minimum.reduceat`` over the village runs: O(n),
    no sort.
    """
    best = np.full(len(inst.village_ids), -1, dtype=np.int64)
    if not inst.n_options:
        return best
    vals = np.where(mask, values, np.inf)
    village = inst.option_village
    starts = np.flatnonzero(np.r_[True, village[1:] != village[:-1]])
    least = np.minimum.reduceat(vals, starts)
    hit = np.flatnonzero(mask & (vals == np.repeat(least, np.diff(np.r_[starts, len(vals)]))))
    first = hit[np.r_[True, village[hit][1:] != village[hit][:-1]]] if len(hit) else hit
    best[village[first]] = first
    return best


def _per_option_site(inst: Instance, per_site: np.ndarray) -> np.ndarray:
    """Each option's site's value of ``per_site`` (0 for site-free options)."""
    if not len(inst.site_ids):
        return np.zeros(inst.n_options)
    return np.where(inst.site >= 0, per_site[np.maximum(inst.site, 0)], 0.0)


def greedy_choice(
    inst: Instance, policy: Policy, open_sites: np.ndarray | None = None, prepaid: float = 0.0
) -> np.ndarray:
    """Chosen option per village (-1: unserved) by the greedy per-village rule; vectorised.

    Each village is priced at its cheapest available option. With ``open_sites`` None every option is
    available and pays its site alone (option cost + site cost: the no-sharing baseline); otherwise only
    site-free options and options of open sites are available and site costs are treated as paid
    (``prepaid`` [CNY] of the budget's money counts against the budget). Then: villages whose cheapest option has a negative
    objective price are taken (min_subsidy), each coverage target (districts, then overall) is met by
    taking uncovered villages in ascending order of extra price per weight, and under max_coverage
    villages are added in ascending cost per weight while the budget lasts.
    """
    n_v = len(inst.village_ids)
    if inst.n_options == 0:  # e.g. no option reaches policy.min_quality: nobody can be served
        return np.full(n_v, -1, dtype=np.int64)
    money, site_money = instance.budget_money(inst, policy)
    site_part = _per_option_site(inst, inst.site_cost)
    obj = inst.net_cost if policy.objective == "min_subsidy" else inst.cost
    if open_sites is None:
        available = np.ones(inst.n_options, dtype=bool)
        price, spend = obj + site_part, money + _per_option_site(inst, site_money)
    else:
        available = (inst.site < 0) | open_sites[np.maximum(inst.site, 0)]
        price, spend = obj, money
    if policy.objective == "max_coverage":
        price = spend

    best_any = _village_argmin(inst, price, available)
    best_cov = _village_argmin(inst, price, available & inst.covered)
    choice = np.full(n_v, -1, dtype=np.int64)
    if policy.objective != "max_coverage":
        take = (best_any >= 0) & (price[np.maximum(best_any, 0)] < 0)
        choice[take] = best_any[take]
    w = inst.village_weight

    def candidates(group: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Uncovered villages that can be covered, sorted by group then extra price per weight."""
        is_cov = (choice >= 0) & inst.covered[np.maximum(choice, 0)]
        cand = np.flatnonzero((group >= 0) & (best_cov >= 0) & ~is_cov & (w > 0))
        current = np.where(choice[cand] >= 0, price[np.maximum(choice[cand], 0)], 0.0)
        extra = price[best_cov[cand]] - current
        order = np.lexsort((cand, extra / w[cand], group[cand]))
        return cand[order], group[cand][order], extra[order]

    def meet(group: np.ndarray, need: np.ndarray) -> None:
        """Per group, take candidates until the group's needed weight is reached."""
        cand, g, _ = candidates(group)
        before = np.cumsum(w[cand]) - w[cand]
        starts = (
            np.r_[0, np.flatnonzero(np.diff(g)) + 1] if len(g) else np.array([], dtype=np.int64)
        )
        before -= np.repeat(before[starts], np.diff(np.r_[starts, len(g)]))
        sel = before < need[g] - TOL * np.maximum(1.0, need[g])
        choice[cand[sel]] = best_cov[cand[sel]]

    t = instance.targets(inst, policy)
    if t.names:
        total = t.sums(w)

        def need() -> np.ndarray:
            covered_w = t.sums(
                np.where((choice >= 0) & inst.covered[np.maximum(choice, 0)], w, 0.0)
            )
            return t.share * total - covered_w

        meet(t.village_group, need())  # district targets first
        if t.has_overall:
            meet(np.zeros(n_v, dtype=np.int64), need()[:1])
    if policy.objective == "max_coverage":
        money = policy.budget - prepaid - spend[choice[choice >= 0]].sum()
        cand, _, extra = candidates(np.zeros(n_v, dtype=np.int64))
        k = int(np.searchsorted(np.cumsum(extra), money * (1 + 1e-12), side="right"))
        choice[cand[:k]] = best_cov[cand[:k]]
    return choice


def evaluate(
    inst: Instance, choice: np.ndarray, policy: Policy, sites_shared: bool = True
) -> dict[str, object]:
    """Cost, coverage and feasibility of a per-village choice (-1: unserved); a built site loaded
    beyond its capacity is a violation (``capacity[site]``) like a missed target.

    With ``sites_shared`` a site used by several villages is paid once (the plan's accounting);
    otherwise every option pays its site alone (the baseline's). ``budget_spent`` is the money
    of ``policy.budget_basis`` (:func:`~universal_service.optimize.instance.budget_money`) [CNY].
    """
    served = choice >= 0
    opt = choice[served]
    used = inst.site[opt][inst.site[opt] >= 0]
    n_use = np.bincount(used, minlength=len(inst.site_ids))
    paid = (n_use > 0) if sites_shared else n_use
    site_paid = paid * inst.site_cost
    covered = np.zeros(len(choice), dtype=bool)
    covered[served] = inst.covered[opt]
    w = inst.village_weight
    total_cost = float(inst.cost[opt].sum() + site_paid.sum())
    total_net = float(inst.net_cost[opt].sum() + site_paid.sum())
    money, site_money = instance.budget_money(inst, policy)
    spent = float(money[opt].sum() + (paid * site_money).sum()) if len(opt) else 0.0
    t = instance.targets(inst, policy)
    total = t.sums(w)
    short = t.sums(np.where(covered, w, 0.0)) < t.share * total - TOL * np.maximum(1.0, total)
    problems = [name for name, bad in zip(t.names, short, strict=True) if bad]
    if policy.budget is not None and spent > policy.budget + TOL * max(1.0, policy.budget):
        problems.append("budget")
    if sites_shared and inst.demand is not None and inst.site_capacity is not None and len(used):
        load = np.bincount(
            inst.site[opt][inst.site[opt] >= 0],
            weights=inst.demand[opt][inst.site[opt] >= 0],
            minlength=len(inst.site_ids),
        )
        over = np.flatnonzero(load > inst.site_capacity * (1 + TOL) + TOL)
        problems += [f"capacity[{inst.site_ids[k]}]" for k in over]
    return {
        "total_cost": total_cost,
        "total_net_cost": total_net,
        "budget_spent": spent,
        "covered": covered,
        "covered_weight": float(w[covered].sum()),
        "site_built": n_use > 0,
        "site_paid": site_paid.astype(float),
        "violated": problems,
    }


def share_bound(inst: Instance, policy: Policy) -> float:
    """A valid bound on the optimum without any LP, for when the LP relaxation runs out of time.

    A site used by ``k`` villages is paid once, and at most ``n_s`` villages have an option at site
    ``s``, so every plan costs at least ``sum over served villages of (option cost + f_s / n_s)`` (the
    classic per-client share bound for facility location). With ``p_v`` the cheapest such price of
    a covered option and ``q_v`` of any option, a min_cost / min_subsidy plan costs at least
    ``sum_v min(0, q_v)`` plus, for the target group that needs most, the cheapest fractional cover
    at prices ``p_v - min(0, q_v)``; a max_coverage plan covers at most the fractional knapsack of
    weight bought within the budget at the prices ``p_v`` of the budget's money (each site's money
    shared the same way). Vectorised: one sort per group.

    Returns
    -------
    float
        Lower bound [CNY] for min objectives, upper bound [weight] for max_coverage.
    """
    n_v, w = len(inst.village_ids), inst.village_weight
    pairs = np.unique(np.stack([inst.site, inst.option_village])[:, inst.site >= 0], axis=1)
    users = np.bincount(pairs[0], minlength=len(inst.site_ids)).astype(float)

    def share(per_site: np.ndarray) -> np.ndarray:
        return _per_option_site(inst, per_site / np.maximum(users, 1.0))

    if policy.objective == "max_coverage":
        money, site_money = instance.budget_money(inst, policy)
        per_option = money + share(site_money)
    else:
        per_option = (inst.net_cost if policy.objective == "min_subsidy" else inst.cost) + share(
            inst.site_cost
        )
    p, q = np.full(n_v, np.inf), np.full(n_v, np.inf)
    np.minimum.at(q, inst.option_village, per_option)
    np.minimum.at(p, inst.option_village[inst.covered], per_option[inst.covered])

    if policy.objective == "max_coverage":  # buy weight with the budget, most weight per CNY first
        reach = np.isfinite(p) & (w > 0)
        paid = reach & (p > 0)
        bought = _fractional_cover(
            np.where(paid, -w, np.nan),
            np.where(paid, p, 0.0),
            np.zeros(n_v, dtype=np.int64),
            np.array([float(policy.budget)]),
            cap=True,
        )
        return float(w[reach & ~paid].sum() - bought[0])
    base = np.minimum(0.0, np.where(np.isfinite(q), q, 0.0))
    t = instance.targets(inst, policy)
    if not t.names:
        return float(base.sum())
    need = t.share * t.sums(w)
    cost = _fractional_cover(p - base, w, t.village_group, need)
    if t.has_overall:
        cost[0] = _fractional_cover(p - base, w, np.zeros(n_v, dtype=np.int64), need[:1])[0]
    return float(base.sum() + max(cost.max(), 0.0))


def _fractional_cover(
    price: np.ndarray, weight: np.ndarray, group: np.ndarray, need: np.ndarray, cap: bool = False
) -> np.ndarray:
    """Per group, the least ``price`` paid to cover ``need`` of ``weight`` with fractional items taken
    in ascending price per weight; inf where a group cannot reach its need (with ``cap``: the price
    of all it can reach). One lexsort and cumulative sums, no loop over groups."""
    idx = np.flatnonzero(np.isfinite(price) & (weight > 0) & (group >= 0))
    idx = idx[np.lexsort((idx, price[idx] / weight[idx], group[idx]))]
    g, wt, pr = group[idx], weight[idx], price[idx]
    before = np.cumsum(wt) - wt
    starts = np.r_[0, np.flatnonzero(np.diff(g)) + 1] if len(g) else np.array([], dtype=np.int64)
    before -= np.repeat(before[starts], np.diff(np.r_[starts, len(g)]))
    frac = np.clip((need[g] - before) / wt, 0.0, 1.0)
    out = np.bincount(g, weights=frac * pr, minlength=len(need)).astype(float)
    if not cap:
        reach = np.bincount(g, weights=wt, minlength=len(need))
        out[reach < need - TOL * np.maximum(1.0, need)] = np.inf
    return out


def objective_value(inst: Instance, ev: dict[str, object], policy: Policy) -> float:
    """The policy's objective of an :func:`evaluate`-d plan: [CNY], or covered weight minus the
    cost tie-break (:func:`~universal_service.optimize.formulate.tie_break_weight`) for max_coverage."""
    if policy.objective == "max_coverage":
        return ev["covered_weight"] - formulate.tie_break_weight(inst) * ev["total_cost"]
    return ev["total_net_cost"] if policy.objective == "min_subsidy" else ev["total_cost"]


def improve_plan(inst: Instance, policy: Policy, choice: np.ndarray, rounds: int = 8) -> np.ndarray:
    """Local search on a feasible plan: re-assign with its sites paid, then drop sites (vectorised).

    Each round re-runs :func:`greedy_choice` with the plan's sites open and paid (villages move to
    options at sites already built), then closes the open sites whose cost exceeds what their
    villages lose by moving to their next cheapest available option (the DROP heuristic of Feldman,
    Lehrer & Ray (1966), "Warehouse location under continuous economies of scale", Management Science
    12(9):670-684): all such sites at once, else the top quarter, twentieth or single best by saving.
    A move is kept only when the plan stays feasible and gets cheaper. min_cost and min_subsidy only.
    """
    if policy.objective == "max_coverage" or not len(inst.site_ids):
        return choice
    price = inst.net_cost if policy.objective == "min_subsidy" else inst.cost

    def value(c: np.ndarray) -> tuple[float, dict[str, object]]:
        ev = evaluate(inst, c, policy)
        return (math.inf if ev["violated"] else objective_value(inst, ev, policy)), ev

    best_value, ev = value(choice)
    for _ in range(rounds):
        open_sites = np.asarray(ev["site_built"])
        trials = [greedy_choice(inst, policy, open_sites)]
        current = trials[0]
        served = np.flatnonzero(current >= 0)
        own = np.full(len(inst.village_ids), -1)
        own[served] = inst.site[current[served]]
        available = ((inst.site < 0) | open_sites[np.maximum(inst.site, 0)]) & (
            inst.site != own[inst.option_village]
        )
        available &= inst.covered | ~inst.covered[np.maximum(current, 0)][inst.option_village]
        alt = _village_argmin(inst, price, available)
        alternative = np.where(alt >= 0, price[np.maximum(alt, 0)], np.inf)
        movers = served[own[served] >= 0]
        loss = alternative[movers] - price[current[movers]]
        saving = inst.site_cost - np.bincount(
            own[movers], weights=loss, minlength=len(inst.site_ids)
        )
        saving[~open_sites] = -np.inf
        ranked = np.argsort(-saving, kind="stable")
        n_pos = int((saving > 0).sum())
        for k in sorted(
            {n_pos, math.ceil(n_pos / 4), math.ceil(n_pos / 20), min(n_pos, 1)}, reverse=True
        ):
            if k > 0:
                trials.append(
                    greedy_choice(
                        inst, policy, open_sites & ~np.isin(np.arange(len(open_sites)), ranked[:k])
                    )
                )
        scored = [(value(t), i, t) for i, t in enumerate(trials)]
        (trial_value, trial_ev), _, trial = min(scored, key=lambda item: (item[0][0], item[1]))
        if not trial_value < best_value - TOL * max(1.0, abs(best_value)):
            break
        choice, best_value, ev = trial, trial_value, trial_ev
    return choice


def repair_capacity(inst: Instance, policy: Policy, choice: np.ndarray) -> np.ndarray:
    """Move villages off overloaded sites until every built site carries at most its capacity.

    For each overloaded site, the village whose cheapest alternative (a site-free option, or an
    option at another built site with room for its demand, that counts as covered when the
    current one does) costs least extra per Mbps freed moves there; repeated until the site
    fits or none of its villages can move (the plan then stays infeasible). A few moves per
    site, so it runs on the greedy's plans before :func:`improve_plan`.
    """
    if inst.demand is None or inst.site_capacity is None or not len(inst.site_ids):
        return choice
    price = inst.net_cost if policy.objective == "min_subsidy" else inst.cost
    choice = choice.copy()
    starts = np.flatnonzero(np.r_[True, inst.option_village[1:] != inst.option_village[:-1]])
    ends = np.r_[starts[1:], inst.n_options]
    first = np.full(len(inst.village_ids), -1)
    first[inst.option_village[starts]] = np.arange(len(starts))
    cap = inst.site_capacity * (1 + TOL) + TOL
    for _ in range(len(inst.village_ids)):
        served = np.flatnonzero(choice >= 0)
        at = inst.site[choice[served]]
        load = np.bincount(
            at[at >= 0], weights=inst.demand[choice[served]][at >= 0], minlength=len(inst.site_ids)
        )
        over = np.flatnonzero(load > cap)
        if not over.size:
            return choice
        s = int(over[0])
        built = np.bincount(at[at >= 0], minlength=len(inst.site_ids)) > 0
        room = cap - load
        best = None
        for v in served[at == s]:
            cur = choice[v]
            k = first[v]
            opts = np.arange(starts[k], ends[k])
            site = inst.site[opts]
            ok = (opts != cur) & (site != s)
            ok &= (site < 0) | (
                built[np.maximum(site, 0)] & (inst.demand[opts] <= room[np.maximum(site, 0)])
            )
            if inst.covered[cur]:
                ok &= inst.covered[opts]
            if not ok.any():
                continue
            alt = opts[ok][np.argmin(price[opts[ok]])]
            extra = (price[alt] - price[cur]) / max(inst.demand[cur], 1e-9)
            if best is None or extra < best[0]:
                best = (extra, v, alt)
        if best is None:
            return choice
        choice[best[1]] = best[2]
    return choice


def incumbent(
    model: Formulation,
    inst: Instance,
    policy: Policy,
    lp_x: np.ndarray | None,
    start: np.ndarray | None = None,
) -> np.ndarray | None:
    """Best feasible greedy plan as a column vector (None when no greedy plan is feasible).

    The candidates are the no-sharing greedy plan, ``start`` (a choice per village given by the
    caller, e.g. a neighbouring plan) and, given the LP relaxation's column values ``lp_x``,
    greedy plans over the sites the LP opens (``y >= 0.5`` and ``y > 0``), each improved by
    :func:`improve_plan`.
    """
    candidates = [greedy_choice(inst, policy)]
    if start is not None:
        candidates.append(np.asarray(start, dtype=int))
    if lp_x is not None and len(model.y_site):
        for threshold in (0.5, 1e-6):
            open_sites = np.zeros(len(inst.site_ids), dtype=bool)
            open_sites[model.y_site] = lp_x[model.n_x : model.n_x + model.n_y] >= threshold
            prepaid = (
                float(instance.budget_money(inst, policy)[1][open_sites].sum())
                if policy.objective == "max_coverage"
                else 0.0
            )
            candidates.append(greedy_choice(inst, policy, open_sites, prepaid))
    best, best_value = None, math.inf
    for choice in candidates:
        choice = repair_capacity(inst, policy, choice)
        if evaluate(inst, choice, policy)["violated"]:
            continue
        improved = repair_capacity(inst, policy, improve_plan(inst, policy, choice))
        for c in (choice, improved):  # the local moves know nothing of site capacity
            ev = evaluate(inst, c, policy)
            if ev["violated"]:
                continue
            value = model.sense * objective_value(inst, ev, policy)
            if value < best_value:
                best, best_value = c, value
    return None if best is None else formulate.columns(model, inst, best)
