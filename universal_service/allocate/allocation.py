"""The Allocation Dataset: every regime on the same districts and operators, side by side."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Sequence

import networkx as nx
import numpy as np
import pandas as pd
import xarray as xr

from .. import appraisal, optimize
from ..catalog import Catalog
from ..errors import ScenarioError
from ..io import Region
from ..schema import REGIMES, ScenarioConfig
from . import regimes as rg
from .footprint import NEUTRAL_HOST, CoalitionCosts
from .sharing import MAX_EXACT_SHAPLEY_PLAYERS, MAX_NUCLEOLUS_PLAYERS, nucleolus, shapley

log = logging.getLogger(__name__)

#: Files :func:`write` owns in an output folder.
ALLOCATION_FILES = ("allocation.nc", "allocation.csv")
#: Sharing rules reported for the ``shared`` regime (dim ``rule``).
RULES = ("shapley", "nucleolus", "proportional_revenue", "proportional_market_share")
#: Shapley permutation samples when there are too many players to enumerate coalitions.
SHAPLEY_SAMPLES = 2000
#: Two districts are adjacent when their boundaries come this close [m] (the bundled county
#: outlines are simplified to about 200 m, so shared borders do not touch exactly).
ADJACENCY_GAP_M = 500.0


def reference_shares(
    operators: pd.DataFrame, players: Sequence[str], basis: str, profit_weight: float = 0.5
) -> pd.Series:
    """Each operator's reference share of the burden: of revenue, profit, a mix, or market share.

    Parameters
    ----------
    operators : pandas.DataFrame
        The region's operators table (``revenue_cny``, ``profit_cny``, ``market_share``).
    players : sequence of str
    basis : {"revenue", "profit", "mix", "market_share"}
        "mix" weighs the profit share by ``profit_weight`` and the revenue share by the rest.
        Losses count as zero profit.

    Returns
    -------
    pandas.Series
        Shares summing to 1, indexed by operator.

    Raises
    ------
    ScenarioError
        The column the basis needs is missing, empty or sums to zero.
    """
    ops = operators.set_index("operator_id").reindex(list(players))

    def share(col: str) -> pd.Series:
        if col not in ops or ops[col].isna().any():
            raise ScenarioError(
                f"allocation.basis '{basis}' needs column '{col}' in the region's operators "
                f"table for every operator {list(players)}; add it or choose another basis."
            )
        v = ops[col].astype(float).clip(lower=0.0)
        if v.sum() <= 0:
            raise ScenarioError(f"allocation.basis '{basis}': column '{col}' sums to 0.")
        return v / v.sum()

    if basis == "mix":
        out = (1 - profit_weight) * share("revenue_cny") + profit_weight * share("profit_cny")
    else:
        out = share({"revenue": "revenue_cny", "profit": "profit_cny"}.get(basis, basis))
    return out.rename("reference_share")


def district_adjacency(region: Region, districts: Sequence[str]) -> nx.Graph:
    """Adjacency of districts (indices into ``districts``): boundaries within
    :data:`ADJACENCY_GAP_M`."""
    d = region.districts.set_index("district_id").reindex(list(districts))
    g = nx.Graph()
    g.add_nodes_from(range(len(districts)))
    geoms = d.geometry.to_numpy()
    for i in range(len(geoms)):
        for j in range(i + 1, len(geoms)):
            if geoms[i] is not None and geoms[j] is not None:
                if geoms[i].distance(geoms[j]) <= ADJACENCY_GAP_M:
                    g.add_edge(i, j)
    return g


def levy_base(
    region: Region, players: Sequence[str], config: ScenarioConfig
) -> tuple[np.ndarray, float]:
    """Revenue the fund's levy applies to [CNY, NPV] per operator, and the regional share used.

    Annual revenue (``revenue_cny``) times the share earned in the region
    (``allocation.levy_base_share``, or the region's population over
    ``allocation.national_population``), discounted over the horizon at the scenario's rate
    (:func:`universal_service.appraisal.annuity_factor`).
    """
    a, p = config.allocation, config.policy
    share = a.levy_base_share
    if share is None:
        share = float(region.villages["population"].sum()) / a.national_population
    rev = region.operators.set_index("operator_id").reindex(list(players))["revenue_cny"]
    factor = appraisal.annuity_factor(p.discount_rate, p.horizon_years)
    return rev.astype(float).fillna(0.0).to_numpy() * share * factor, float(share)


def _sharing(
    game: CoalitionCosts, players: list[str], ref: dict[str, pd.Series]
) -> tuple[pd.DataFrame, list[str]]:
    """Charges of the grand coalition's need by every rule of :data:`RULES` (rule x operator).

    The Shapley value and the nucleolus are those of the game among the operators that own
    infrastructure in the region (the others bring nothing and cannot serve alone: they are
    charged 0). A district where some coalition of owners cannot meet the obligation has no
    finite game; its need is charged in proportion to revenue, and it is returned in the list.
    """
    owners = sorted(game.effective(players))
    subsets = [
        frozenset(c) for k in range(1, len(owners) + 1) for c in itertools.combinations(owners, k)
    ]
    finite = [d for d in game.districts if all(np.isfinite(game.value(s, d)) for s in subsets)]
    fallback = [d for d in game.districts if d not in finite]
    rest = sum((game.value(players, d) for d in fallback), 0.0) * ref["revenue"].fillna(0.0)
    zero = pd.Series(0.0, index=players)
    rows = {}
    if owners and finite:
        samples = None if len(owners) <= MAX_EXACT_SHAPLEY_PLAYERS else SHAPLEY_SAMPLES
        per_district = [
            shapley(lambda s, d=d: game.value(s, d), owners, samples=samples) for d in finite
        ]
        rows["shapley"] = zero.add(sum(per_district[1:], per_district[0]), fill_value=0) + rest
        if len(owners) <= MAX_NUCLEOLUS_PLAYERS:
            nuc = nucleolus(lambda s: sum(game.value(s, d) for d in finite), owners)
            rows["nucleolus"] = zero.add(nuc, fill_value=0) + rest
        else:
            rows["nucleolus"] = pd.Series(np.nan, index=players)
    else:
        rows["shapley"] = rows["nucleolus"] = rest
    total = game.value(players)
    rows["proportional_revenue"] = total * ref["revenue"]
    rows["proportional_market_share"] = total * ref["market_share"]
    return pd.DataFrame(rows).T.reindex(index=list(RULES), columns=players), fallback


def allocate(
    region: Region,
    config: ScenarioConfig,
    policy: optimize.Policy,
    catalog: Catalog | None = None,
    regimes: Sequence[str] | None = None,
) -> xr.Dataset:
    """Allocate the region's obligation among its operators under each regime.

    Parameters
    ----------
    region : Region
    config : ScenarioConfig
        Its ``policy`` and ``radio`` sections price the options, ``allocation`` sets the regimes.
    policy : optimize.Policy
        The obligation and solver settings (``scenarios.policy_for(config)``).
    catalog : Catalog, optional
    regimes : sequence of str, optional
        Some of ``lots``, ``auction``, ``fund``, ``shared``; ``config.allocation.regimes`` by
        default.

    Returns
    -------
    xarray.Dataset
        The Allocation: dims ``regime``, ``district``, ``operator`` (and ``rule`` for the shared
        network's sharing rules). Variables on (regime, district, operator): ``assigned``,
        ``cost``, ``need``, ``subsidy`` [CNY]; on (regime, operator): ``levy``, ``net_burden``
        [CNY], ``burden_share``; ``reference_share`` (operator); per regime ``status``,
        ``total_cost``, ``total_subsidy``, ``cost_of_fairness`` [CNY], ``coverage``
        (population share), ``levy_rate``; the inputs ``standalone_cost``,
        ``standalone_need`` [CNY] (district, operator) and ``sharing`` (rule, operator) [CNY].
    """
    a = config.allocation
    names = list(regimes) if regimes is not None else list(a.regimes)
    unknown = sorted(set(names) - set(REGIMES))
    if unknown:
        raise ScenarioError(f"unknown regime(s) {unknown}; choose from {list(REGIMES)}.")
    names = [r for r in REGIMES if r in names]
    players = sorted(set(region.operators["operator_id"].astype(str)) - {NEUTRAL_HOST})
    if not players:
        raise ScenarioError(
            f"{region.path}: the operators table lists no operator to allocate among."
        )
    try:
        game = CoalitionCosts(region, config.policy, config.radio, policy, catalog, players)
    except ValueError as exc:
        raise ScenarioError(str(exc)) from None
    dist = game.districts
    alone = _standalone(game, players)
    cost, need = alone["cost"], alone["need"]
    ref = reference_shares(region.operators, players, a.basis, a.profit_weight)
    solve_kw = {
        "solver": policy.solver,
        "time_limit_s": policy.time_limit_s,
        "mip_gap": 1e-9,
        "threads": policy.threads,
        "seed": policy.seed,
    }
    out: dict[str, rg.Outcome] = {}
    sharing = None
    for r in names:
        if r == "lots":
            adj = district_adjacency(region, dist) if a.contiguous else None
            out[r] = rg.lots(
                cost,
                need,
                ref.to_numpy(),
                a.tolerance,
                adjacency=adj,
                solve_kw=solve_kw,
                names=players,
            )
        elif r == "auction":
            least = np.nanmin(np.where(np.isfinite(need), need, np.inf), axis=1)
            reserve = np.where(np.isfinite(least), (1.0 + a.reserve_margin) * least, np.nan)
            out[r] = rg.auction(
                cost,
                need,
                alone["bid_weight"],
                reserve=reserve,
                budget=a.budget_cny,
                markup=a.markup,
                seed=a.seed,
            )
        elif r == "fund":
            base, share = levy_base(region, players, config)
            out[r] = rg.fund(cost, need, base)
            out[r].attrs["levy_base_share"] = share
        else:
            sharing, fallback = _sharing(game, players, _proportional_bases(region, players))
            rule = a.cost_sharing
            if rule == "proportional":
                rule = (
                    "proportional_market_share"
                    if a.basis == "market_share"
                    else "proportional_revenue"
                )
            grand = {
                f: np.array([game.value(players, d, f) for d in dist]) for f in ("cost", "need")
            }
            out[r] = rg.shared(grand["cost"], grand["need"], sharing.loc[rule].to_numpy(float))
            out[r].attrs["rule"] = rule
            out[r].attrs["revenue_split_districts"] = ",".join(fallback)
    grand_covered = (
        np.array(
            [float(game.table(game.best(players, d)).at[d, "covered_population"]) for d in dist]
        )
        if "shared" in names
        else None
    )
    return _dataset(region, game, players, names, out, alone, ref, sharing, grand_covered, config)


def _standalone(game: CoalitionCosts, players: list[str]) -> dict[str, np.ndarray]:
    """Each operator's stand-alone figures per district (district x operator arrays; NaN where it
    cannot meet the obligation)."""
    out = {}
    for f in ("cost", "need", "bid_weight", "covered_population"):
        v = np.array([[game.value([o], d, f) for o in players] for d in game.districts])
        out[f] = np.where(np.isfinite(v), v, np.nan)
    return out


def _proportional_bases(region: Region, players: list[str]) -> dict[str, pd.Series]:
    out = {}
    for b in ("revenue", "market_share"):
        try:
            out[b] = reference_shares(region.operators, players, b)
        except ScenarioError:
            out[b] = pd.Series(np.nan, index=players)
    return out


def _dataset(
    region: Region,
    game: CoalitionCosts,
    players: list[str],
    names: list[str],
    out: dict[str, rg.Outcome],
    alone: dict[str, np.ndarray],
    ref: pd.Series,
    sharing: pd.DataFrame | None,
    grand_covered: np.ndarray | None,
    config: ScenarioConfig,
) -> xr.Dataset:
    dist = game.districts
    cost, need = alone["cost"], alone["need"]
    dims3 = ("regime", "district", "operator")
    cube = {
        k: np.stack([getattr(out[r], k) for r in names])
        for k in ("assigned", "cost", "need", "subsidy")
    }
    levy = np.stack([out[r].levy for r in names])
    burden = np.stack([out[r].net_burden for r in names])
    total_burden = burden.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(total_burden > 0, burden / total_burden, np.nan)
    efficient = rg.least_cost(cost, need)
    efficient_cost = float(efficient.cost.sum())
    population = game.table(players[:1]).loc[dist, "population"].to_numpy(float)
    existing = _existing_covered(region, dist)
    coverage, total_cost = [], []
    for r in names:
        o = out[r]
        if r == "shared":
            cov = grand_covered
        else:
            held = np.nan_to_num(o.assigned).sum(axis=1) > 0
            cov = np.where(
                held, np.nansum(o.assigned * alone["covered_population"], axis=1), existing
            )
        coverage.append(
            float(np.nansum(cov) / population.sum()) if population.sum() > 0 else np.nan
        )
        total_cost.append(float(np.sum(o.cost)) if np.isfinite(o.cost).all() else np.nan)
    total_cost_a = np.array(total_cost)
    ds = xr.Dataset(
        {
            "assigned": (dims3, cube["assigned"]),
            "cost": (dims3, cube["cost"], {"units": "CNY"}),
            "need": (dims3, cube["need"], {"units": "CNY"}),
            "subsidy": (dims3, cube["subsidy"], {"units": "CNY"}),
            "levy": (("regime", "operator"), levy, {"units": "CNY"}),
            "net_burden": (("regime", "operator"), burden, {"units": "CNY"}),
            "burden_share": (("regime", "operator"), share),
            "reference_share": (("operator",), ref.reindex(players).to_numpy(float)),
            "status": (("regime",), np.array([out[r].status for r in names], dtype=str)),
            "total_cost": (("regime",), total_cost_a, {"units": "CNY"}),
            "total_subsidy": (
                ("regime",),
                np.array([np.sum(out[r].subsidy) for r in names]),
                {"units": "CNY"},
            ),
            "cost_of_fairness": (("regime",), total_cost_a - efficient_cost, {"units": "CNY"}),
            "coverage": (("regime",), np.array(coverage)),
            "levy_rate": (
                ("regime",),
                np.array(
                    [out[r].attrs.get("levy_rate", 0.0 if r != "fund" else np.nan) for r in names]
                ),
            ),
            "standalone_cost": (("district", "operator"), cost, {"units": "CNY"}),
            "standalone_need": (("district", "operator"), need, {"units": "CNY"}),
            "population": (("district",), population, {"units": "persons"}),
        },
        coords={"regime": names, "district": dist, "operator": players},
    )
    if sharing is not None:
        ds["sharing"] = (("rule", "operator"), sharing.to_numpy(float), {"units": "CNY"})
        ds = ds.assign_coords(rule=list(sharing.index))
    a = config.allocation
    ds.attrs.update(
        region=region.name,
        scenario=config.name,
        basis=a.basis,
        tolerance=a.tolerance,
        least_cost_total=efficient_cost,
        footprints_costed=game.n_builds,
        footprint_repairs=game.repairs(),
        currency="CNY",
    )
    for r in names:
        for k, v in out[r].attrs.items():
            if isinstance(v, (str, int, float, bool, np.floating, np.integer)):
                ds.attrs[f"{r}_{k}"] = v
            elif k in ("unsold", "market"):
                ds.attrs[f"{r}_{k}"] = ",".join(dist[i] for i in v)
    return ds


def _existing_covered(region: Region, districts: list[str]) -> np.ndarray:
    """Population already covered (4G or fiber today) per district [persons]."""
    from ..schema import BROADBAND_LEVELS

    v = region.villages
    ok = v["existing_service"].isin(BROADBAND_LEVELS)
    return (
        v[ok]
        .groupby(v["district_id"].astype(str))["population"]
        .sum()
        .reindex(districts)
        .fillna(0)
        .to_numpy(float)
    )


def regime_table(ds: xr.Dataset) -> pd.DataFrame:
    """One row per regime: status, total cost, subsidy, levy rate, cost of fairness, coverage."""
    cols = ["status", "total_cost", "total_subsidy", "levy_rate", "cost_of_fairness", "coverage"]
    return ds[cols].to_dataframe()[cols]


def operator_table(ds: xr.Dataset) -> pd.DataFrame:
    """One row per regime and operator (the ``allocation.csv`` table): districts held, NPV cost
    borne, subsidy received, levy paid, net burden [CNY], burden share and reference share."""
    per = xr.Dataset(
        {
            "districts": ds["assigned"].fillna(0).sum("district"),
            "cost": ds["cost"].sum("district", min_count=1),
            "subsidy": ds["subsidy"].sum("district", min_count=1),
            "levy": ds["levy"],
            "net_burden": ds["net_burden"],
            "burden_share": ds["burden_share"],
            "reference_share": ds["reference_share"],
        }
    )
    return per.to_dataframe().reset_index()


def _money(x: float) -> str:
    return "-" if not np.isfinite(x) else f"{x:,.0f}"


def format_table(ds: xr.Dataset) -> str:
    """The regimes side by side, as ``universal-service allocate`` prints them."""
    ops = [str(o) for o in ds["operator"].values]
    lines = [
        f"Allocation of {ds.attrs.get('region', '')} (scenario {ds.attrs.get('scenario', '')}): "
        f"{ds.sizes['district']} districts, {len(ops)} operators",
        "",
        f"{'regime':<8} {'status':<11} {'total cost [CNY]':>17} {'subsidy [CNY]':>15} "
        f"{'levy rate':>10} {'cost of fairness [CNY]':>23} {'coverage':>9}",
    ]
    for r, row in regime_table(ds).iterrows():
        levy = (
            "-" if not np.isfinite(row["levy_rate"]) or r != "fund" else f"{row['levy_rate']:.4%}"
        )
        lines.append(
            f"{r:<8} {row['status']:<11} {_money(row['total_cost']):>17} "
            f"{_money(row['total_subsidy']):>15} {levy:>10} {_money(row['cost_of_fairness']):>23} "
            f"{row['coverage']:>9.4f}"
        )
    ref = ds["reference_share"].values
    lines += [
        "",
        f"Burden share of each operator vs its reference share ({ds.attrs.get('basis', '')}):",
        f"{'regime':<8} " + " ".join(f"{o:>15}" for o in ops),
    ]
    for r in ds["regime"].values:
        cells = []
        for k, _ in enumerate(ops):
            b = float(ds["burden_share"].sel(regime=r).values[k])
            cells.append(f"{'-' if not np.isfinite(b) else f'{b:.3f}'} / {ref[k]:.3f}".rjust(15))
        lines.append(f"{str(r):<8} " + " ".join(cells))
    lines += ["", "Net burden of each operator [CNY] (need where it serves - subsidy + levy):"]
    lines.append(f"{'regime':<8} " + " ".join(f"{o:>15}" for o in ops))
    for r in ds["regime"].values:
        vals = ds["net_burden"].sel(regime=r).values
        lines.append(f"{str(r):<8} " + " ".join(f"{_money(v):>15}" for v in vals))
    lines.append("")
    lines.append(
        f"Least-cost assignment (each district to its cheapest operator): CNY "
        f"{_money(ds.attrs['least_cost_total'])}; cost of fairness = a regime's total cost minus it."
    )
    for r in ds["regime"].values:
        reason = ds.attrs.get(f"{r}_infeasible_reason")
        if reason:
            lines.append(f"{r}: {reason}")
    if "auction" in ds["regime"].values:
        unsold = ds.attrs.get("auction_unsold", "")
        lines.append(
            f"auction: the clock stopped at base percentage {ds.attrs['auction_clearing_pct']:.2f} "
            "(it starts at 190); "
            f"budget CNY {_money(ds.attrs['auction_budget'])}; unsold districts: {unsold or 'none'}."
        )
    if "sharing" in ds:
        lines.append("shared: charges of the network's net cost [CNY] by rule:")
        for rule in ds["rule"].values:
            vals = ds["sharing"].sel(rule=rule).values
            lines.append(f"  {str(rule):<26} " + " ".join(f"{_money(v):>15}" for v in vals))
    return "\n".join(lines)
