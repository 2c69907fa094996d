"""What each operator, or coalition of operators, would pay to meet each district's obligation."""

from __future__ import annotations

import dataclasses
import itertools
import logging
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from .. import costs, optimize
from ..catalog import Catalog, load_catalog
from ..io import Region
from ..schema import BROADBAND_LEVELS, PolicyConfig, RadioConfig

log = logging.getLogger(__name__)

#: ``operator_id`` of infrastructure open to every operator (a neutral-host tower company such as
#: China Tower): it is part of every footprint and is never a player of an allocation.
NEUTRAL_HOST = "neutral"

#: Auction performance-tier weights by the catalog's quality level (3: gigabit-capable fiber;
#: 2: 25/3 Mbps "Baseline" radio; 1: 10/1 Mbps "Minimum"), from the CAF Phase II auction order
#: (FCC 16-64, Connect America Fund, 31 FCC Rcd 5949 (2016), paras 22-36; Auction 903 procedures,
#: FCC Public Notice FCC 18-6 (2018)): Minimum 65, Baseline 45, Above Baseline 15, Gigabit 0.
TIER_WEIGHT = {1: 65.0, 2: 45.0, 3: 0.0}
#: Weight added to a high-latency bid (round trip above :data:`LOW_LATENCY_MS`), same order.
HIGH_LATENCY_WEIGHT = 25.0
#: The CAF-II low-latency threshold: 95% of round-trip measurements at or below 100 ms.
LOW_LATENCY_MS = 100.0

#: Columns of :meth:`CoalitionCosts.table`, per district: NPV cost and subsidy need [CNY], the
#: population the plan covers and the population there is [persons], the CAF-II bid weight of
#: what the plan builds, and the plan's status.
TABLE_COLUMNS = ("cost", "need", "covered_population", "population", "bid_weight", "status")


def footprint(region: Region, operators: Iterable[str]) -> Region:
    """The region as seen by a coalition: only its members' PoPs and towers, plus neutral ones.

    Parameters
    ----------
    region : Region
    operators : iterable of str
        Operator ids; :data:`NEUTRAL_HOST` infrastructure is always kept.

    Returns
    -------
    Region
        A copy sharing every other layer with ``region``.
    """
    keep = set(operators) | {NEUTRAL_HOST}
    return dataclasses.replace(
        region,
        pops=region.pops[region.pops["operator_id"].isin(keep)],
        towers=region.towers[region.towers["operator_id"].isin(keep)]
        if len(region.towers)
        else region.towers,
    )


def bid_weight(quality: np.ndarray, latency_ms: np.ndarray, population: np.ndarray) -> float:
    """The CAF-II weight of a bid: tier weight plus the latency weight, population-weighted.

    Parameters
    ----------
    quality : array of int
        Catalog quality level (1-3) of each newly served village.
    latency_ms : array of float
        Round-trip latency of each village's technology [ms].
    population : array of float
        Population of each village [persons].

    Returns
    -------
    float
        Weight in percentage points of the reserve price (0 = gigabit, low latency; at most 90);
        0 when nothing new is built.
    """
    w = np.array([TIER_WEIGHT.get(int(q), TIER_WEIGHT[1]) for q in quality], float)
    w = w + np.where(np.asarray(latency_ms, float) > LOW_LATENCY_MS, HIGH_LATENCY_WEIGHT, 0.0)
    pop = np.asarray(population, float)
    return float(np.average(w, weights=pop)) if len(w) and pop.sum() > 0 else 0.0


class CoalitionCosts:
    """Per-district stand-alone costs of operator coalitions, computed on demand and cached.

    The cost of coalition ``S`` in district ``d`` is the least NPV cost of meeting ``d``'s
    obligation with ``S``'s combined footprint (:func:`footprint`), through the same code as the
    plan: :func:`universal_service.costs.build_options` over the whole region (so the uniform
    tariff, and with it revenue, is the region's), then :func:`universal_service.optimize.plan`
    on the district's options with the objective ``min_cost``, no budget, and the district's
    coverage target (``policy.district_targets`` or ``coverage_target``). Fiber routes are each
    village's own (no shared trench design per district). The subsidy need is the plan's
    ``total_subsidy`` (cost minus revenue at the regulated tariff, :func:`universal_service.
    appraisal.subsidy`).

    Coalitions whose members own the same infrastructure share one computation: an operator
    without PoPs or towers in the region adds nothing to a footprint.

    Parameters
    ----------
    region : Region
    policy_cfg : PolicyConfig
        Prices the options (tariff, take-up, discounting).
    radio_cfg : RadioConfig
    policy : optimize.Policy
        The obligation (coverage target and basis, district targets, minimum quality) and the
        solver settings.
    catalog : Catalog, optional
    players : sequence of str, optional
        Operator ids; all of ``region.operators`` but :data:`NEUTRAL_HOST` by default.
    """

    def __init__(
        self,
        region: Region,
        policy_cfg: PolicyConfig,
        radio_cfg: RadioConfig,
        policy: optimize.Policy,
        catalog: Catalog | None = None,
        players: Sequence[str] | None = None,
    ) -> None:
        if policy.coverage_target is None and not policy.district_targets:
            raise ValueError(
                "allocation needs an obligation: set policy.coverage_target (or "
                "policy.district_targets) in the scenario; a budget-only scenario "
                "(objective max_coverage) does not say what each district must get."
            )
        self.region = region
        self.policy_cfg, self.radio_cfg = policy_cfg, radio_cfg
        self.catalog = catalog or load_catalog()
        self.policy = dataclasses.replace(policy, objective="min_cost", budget=None)
        ops = region.operators["operator_id"].astype(str)
        self.players = list(players) if players is not None else sorted(set(ops) - {NEUTRAL_HOST})
        owners = set(region.pops["operator_id"]) | (
            set(region.towers["operator_id"]) if len(region.towers) else set()
        )
        self._owners = owners
        self.districts = sorted(region.villages["district_id"].astype(str).unique())
        self._tables: dict[frozenset[str], pd.DataFrame] = {}
        self.n_builds = 0

    def effective(self, coalition: Iterable[str]) -> frozenset[str]:
        """The members of ``coalition`` that own infrastructure in the region."""
        return frozenset(o for o in coalition if o in self._owners)

    def table(self, coalition: Iterable[str]) -> pd.DataFrame:
        """Per-district costs of a coalition (columns :data:`TABLE_COLUMNS`, index district)."""
        key = self.effective(coalition)
        if key not in self._tables:
            self._tables[key] = self._compute(key) if key else self._no_footprint()
        return self._tables[key]

    def _no_footprint(self) -> pd.DataFrame:
        """A coalition without PoPs or towers in the region cannot meet any obligation here."""
        pop = self.region.villages.groupby(self.region.villages["district_id"].astype(str))[
            "population"
        ].sum()
        t = pd.DataFrame(
            np.nan, index=pd.Index(self.districts, name="district"), columns=list(TABLE_COLUMNS)
        )
        t["population"] = pop.reindex(self.districts).to_numpy(float)
        t["status"] = "no_footprint"
        return t

    def _target(self, district: str) -> float | None:
        targets = self.policy.district_targets or {}
        return targets.get(district, self.policy.coverage_target)

    def _compute(self, key: frozenset[str]) -> pd.DataFrame:
        self.n_builds += 1
        log.info("allocation: costing footprint %s", sorted(key) or "(none)")
        region = footprint(self.region, key)
        opts = costs.build_options(region, self.policy_cfg, self.radio_cfg, self.catalog)
        sites = opts.sites[["site_id", "cost", "kind", "capex", "capacity_mbps"]]
        quality = {
            t: int(self.catalog[t]["quality"]) for t in ("fiber", "microwave", "lte", "satellite")
        }
        latency = {t: float(self.catalog[t].get("latency_ms", 0.0)) for t in quality}
        rows = []
        villages = opts.villages.set_index("village_id")
        for d in self.districts:
            vids = set(villages.index[villages["district_id"].astype(str) == d])
            pop = float(villages.loc[sorted(vids), "population"].sum())
            target = self._target(d)
            if target is None:  # no obligation here: nothing to build
                covered = villages.loc[sorted(vids), "existing_service"].isin(BROADBAND_LEVELS)
                rows.append(
                    (
                        0.0,
                        0.0,
                        float(villages.loc[sorted(vids), "population"][covered].sum()),
                        pop,
                        0.0,
                        "optimal",
                    )
                )
                continue
            policy = dataclasses.replace(self.policy, coverage_target=target, district_targets=None)
            plan = optimize.plan(opts.table[opts.table["village_id"].isin(vids)], sites, policy)
            status = str(plan.attrs["status"])
            if status not in {"optimal", "feasible", "time_limit"}:
                rows.append((np.nan, np.nan, np.nan, pop, np.nan, status))
                continue
            tech = plan["technology"].to_numpy().astype(str)
            new = np.isin(tech, list(quality)) & plan["served"].to_numpy().astype(bool)
            popv = plan["population"].to_numpy().astype(float)
            weight = bid_weight(
                np.array([quality[t] for t in tech[new]], int),
                np.array([latency[t] for t in tech[new]], float),
                popv[new],
            )
            covered_pop = float(popv[plan["covered"].to_numpy().astype(bool)].sum())
            rows.append(
                (
                    float(plan.attrs["total_npv_cost"]),
                    float(plan.attrs["total_subsidy"]),
                    covered_pop,
                    pop,
                    weight,
                    status,
                )
            )
        return pd.DataFrame(
            rows, index=pd.Index(self.districts, name="district"), columns=list(TABLE_COLUMNS)
        )

    def best(self, coalition: Iterable[str], district: str) -> frozenset[str]:
        """The sub-coalition of ``coalition`` with the least subsidy need in ``district``.

        A coalition may always leave some of its members' infrastructure unused, so it meets a
        district's obligation at its cheapest sub-coalition's stand-alone cost (this repairs the
        few cases where a larger footprint prices higher, e.g. a microwave hop searched among the
        nearest hubs only; :meth:`repairs` counts them). Ties go to the larger coalition. Empty
        when no sub-coalition can meet the obligation.
        """
        members = sorted(self.effective(coalition))
        best, best_need = frozenset(members), np.inf
        for k in range(len(members), 0, -1):
            for sub in itertools.combinations(members, k):
                need = float(self.table(sub).at[district, "need"])
                if np.isfinite(need) and need < best_need - 1e-6:
                    best, best_need = frozenset(sub), need
        return best if np.isfinite(best_need) else frozenset()

    def value(
        self, coalition: Iterable[str], district: str | None = None, field: str = "need"
    ) -> float:
        """The cost game's value [CNY]: a coalition's cost at its :meth:`best` sub-coalition.

        Parameters
        ----------
        coalition : iterable of str
        district : str, optional
            One district; by default the sum over districts (each at its own best
            sub-coalition).
        field : str
            A column of :data:`TABLE_COLUMNS` but ``status``: ``need`` or ``cost`` [CNY] (the
            game's value), or ``covered_population``, ``population``, ``bid_weight``.

        Returns
        -------
        float
            0 for the empty coalition; inf (NaN for the other fields) when no sub-coalition can
            meet the obligation.
        """
        members = frozenset(coalition)
        if not members:
            return 0.0
        if district is None:
            return float(sum(self.value(members, d, field) for d in self.districts))
        row = self.table(self.best(members, district)).loc[district]
        if not np.isfinite(row["need"]):  # no sub-coalition meets the obligation
            return np.inf if field in ("need", "cost") else np.nan
        return float(row[field])

    def repairs(self) -> int:
        """How many (coalition, district) stand-alone needs exceed a sub-coalition's (repaired)."""
        n = 0
        for key, t in self._tables.items():
            for sub_key, s in self._tables.items():
                if sub_key < key:
                    n += int((t["need"] > s["need"] + 1e-6).sum())
        return n
