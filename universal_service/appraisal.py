"""Money over time: present values, tariffs, take-up, revenue, site shares and the subsidy."""

from __future__ import annotations

import numpy as np


def annuity_factor(rate: float, years: float) -> float:
    """Present value of 1 a year for ``years`` years at ``rate``: (P/A, r, n).

    Newnan, Eschenbach & Lavelle, *Engineering Economic Analysis*, compound interest tables,
    factor (P/A, i, n).

    Parameters
    ----------
    rate : float
        Real discount rate [1/yr].
    years : float
        Number of annual payments [yr].

    Returns
    -------
    float
        ``(1 - (1 + r)**-n) / r``, or ``n`` when ``r == 0``.
    """
    if rate == 0:
        return float(years)
    return float((1.0 - (1.0 + rate) ** -years) / rate)


def capital_recovery_factor(rate: float, years: float) -> float:
    """Level annual payment that repays 1 over ``years`` at ``rate``: (A/P, r, n) = 1/(P/A).

    Parameters
    ----------
    rate : float
        Real discount rate [1/yr].
    years : float
        Number of annual payments [yr].

    Returns
    -------
    float
        Annual payment per unit of present value [1/yr].
    """
    return 1.0 / annuity_factor(rate, years)


def npv(
    capex: np.ndarray | float,
    opex_per_year: np.ndarray | float,
    *,
    rate: float,
    horizon_years: int,
    lifetime_years: float,
) -> np.ndarray:
    """Net present cost of an asset over the appraisal horizon [same currency as inputs].

    One convention everywhere: one real discount rate ``r`` [1/yr], one horizon ``H`` [yr],
    capex paid at t=0 and again at t = L, 2L, ... < H (L the lifetime), opex at the end of years
    1..H, and the unused share of the last investment, ``1 - (H - kL)/L``, credited at t = H
    (straight-line residual value). The present value of a level annual amount ``A`` is then
    ``A * annuity_factor(r, H)``.

    Parameters
    ----------
    capex : array_like
        One-off investment [CNY].
    opex_per_year : array_like
        Annual operating cost [CNY/yr].
    rate : float
        Real discount rate [1/yr].
    horizon_years : int
        Appraisal horizon H [yr].
    lifetime_years : float
        Asset life L [yr], > 0.

    Returns
    -------
    numpy.ndarray
        Present value of all costs [CNY].
    """
    if lifetime_years <= 0:
        raise ValueError(f"lifetime_years must be > 0, got {lifetime_years}")
    capex = np.asarray(capex, dtype=float)
    opex = np.asarray(opex_per_year, dtype=float)
    d = 1.0 + rate
    n_invest = int(np.ceil(horizon_years / lifetime_years))
    invest_pv = sum(d ** -(k * lifetime_years) for k in range(n_invest))
    last = (n_invest - 1) * lifetime_years
    residual_share = 1.0 - (horizon_years - last) / lifetime_years
    residual_pv = residual_share * d**-horizon_years
    return capex * (invest_pv - residual_pv) + opex * annuity_factor(rate, horizon_years)


def household_size(population: np.ndarray, households: np.ndarray, default: float) -> np.ndarray:
    """Persons per household, ``default`` where the household count is 0.

    Parameters
    ----------
    population : array_like
        Persons per village.
    households : array_like
        Households per village.
    default : float
        Persons per household where no household count is given.

    Returns
    -------
    numpy.ndarray
        Persons per household.
    """
    hh = np.asarray(households, float)
    return np.where(hh > 0, np.asarray(population, float) / np.maximum(hh, 1), default)


def discount_factors(rate: float, horizon_years: int) -> np.ndarray:
    """Present value of 1 paid at the end of each year 1..H: ``(1 + r)**-t`` [-].

    Their sum is :func:`annuity_factor` ``(rate, horizon_years)``, the convention of :func:`npv`.
    """
    t = np.arange(1, int(horizon_years) + 1, dtype=float)
    return (1.0 + rate) ** -t


def deferral_factors(rate: float, years: int) -> np.ndarray:
    """Present value of 1 spent at the start of each year 0..n-1: ``(1 + r)**-k`` [-].

    The plan's convention puts capex at the start (year 0, undiscounted); capex a rollout spends
    in its k-th build year is worth this much of it today.
    """
    k = np.arange(int(years), dtype=float)
    return (1.0 + rate) ** -k


def affordable_tariff(
    income_monthly: np.ndarray,
    household_size: np.ndarray,
    *,
    share: float,
    basis: str = "per_capita",
    list_tariff: float,
) -> np.ndarray:
    """The affordability cap of each village: the highest monthly tariff it can afford [CNY/month].

    ``share`` of monthly income, capped at the operator's list price. The A4AI "1 for 2" target
    and the Broadband Commission's target 2 (2018) put entry-level broadband at most 2% of
    *monthly income per capita* (GNI per capita / 12): ``basis="per_capita"``. The looser
    ``basis="household"`` applies the share to household income (per-capita income x household
    size), about 3.2 times higher in the bundled region.

    Parameters
    ----------
    income_monthly : array_like
        Income per person per month [CNY].
    household_size : array_like
        Persons per household (used only by the household basis).
    share : float
        Maximum share of income spent on the service [-].
    basis : {"per_capita", "household"}
        Which income the share applies to.
    list_tariff : float
        The operator's list price [CNY/month].

    Returns
    -------
    numpy.ndarray
        Affordable tariff [CNY/month].
    """
    income = np.asarray(income_monthly, float)
    if basis == "household":
        income = income * np.asarray(household_size, float)
    elif basis != "per_capita":
        raise ValueError(f"affordability basis must be 'per_capita' or 'household', got {basis!r}")
    return np.minimum(share * income, list_tariff)


def uniform_tariff(cap_monthly: np.ndarray, affordable_share: float) -> float:
    """The highest single price affordable in at least ``affordable_share`` of the villages [CNY/month].

    With the caps sorted from the highest, the price is the cap of the ``ceil(s x n)``-th
    village, so at least ``s x n`` villages have a cap at or above it.

    Parameters
    ----------
    cap_monthly : array_like
        Each village's affordability cap (:func:`affordable_tariff`) [CNY/month].
    affordable_share : float
        Share of villages in which the price must be affordable, in (0, 1].

    Returns
    -------
    float
        The uniform tariff [CNY/month] (0 when there are no villages).
    """
    cap = np.sort(np.asarray(cap_monthly, float))[::-1]
    if cap.size == 0:
        return 0.0
    k = int(np.ceil(affordable_share * cap.size - 1e-9))
    return float(cap[min(max(k, 1), cap.size) - 1])


def village_tariffs(
    cap_monthly: np.ndarray, *, rule: str, uniform_monthly: float | None, affordable_share: float
) -> np.ndarray:
    """The regulated tariff of each village under the tariff rule [CNY/month].

    ``income_capped``: each village pays its own cap. ``uniform``: one price everywhere,
    ``uniform_monthly`` when given, else :func:`uniform_tariff` of the caps at
    ``affordable_share``; villages whose cap is below it need a demand-side subsidy
    (:func:`demand_subsidy_npv`).
    """
    cap = np.asarray(cap_monthly, float)
    if rule == "income_capped":
        return cap.copy()
    if rule != "uniform":
        raise ValueError(f"tariff rule must be 'uniform' or 'income_capped', got {rule!r}")
    price = (
        uniform_monthly if uniform_monthly is not None else uniform_tariff(cap, affordable_share)
    )
    return np.full(cap.shape, float(price))


def take_up_path(
    ceiling: float, ramp_years: float, horizon_years: int, shape: str = "linear"
) -> np.ndarray:
    """Share of households subscribing in each year 1..H [-], rising to ``ceiling``.

    ``linear``: ``ceiling x min(1, t / ramp)``. ``logistic``: an S-curve through 0 at t = 0 and
    ``ceiling`` at t = ramp, ``ceiling x (L(t) - L(0)) / (L(ramp) - L(0))`` with
    ``L(t) = 1 / (1 + exp(-10 (t / ramp - 1/2)))``; flat at ``ceiling`` after the ramp. A ramp of 0
    years gives ``ceiling`` from year 1.
    """
    t = np.arange(1, int(horizon_years) + 1, dtype=float)
    if ramp_years <= 0:
        return np.full(t.shape, float(ceiling))
    x = np.minimum(t / ramp_years, 1.0)
    if shape == "logistic":

        def logistic(u: np.ndarray | float) -> np.ndarray:
            return 1.0 / (1.0 + np.exp(-10.0 * (np.asarray(u, float) - 0.5)))

        x = (logistic(x) - logistic(0.0)) / (logistic(1.0) - logistic(0.0))
    elif shape != "linear":
        raise ValueError(f"take-up ramp must be 'linear' or 'logistic', got {shape!r}")
    return ceiling * x


def revenue_npv(
    tariff_monthly: np.ndarray,
    existing_spend_monthly: np.ndarray,
    households: np.ndarray,
    take_up: np.ndarray,
    *,
    margin: float,
    rate: float,
) -> np.ndarray:
    """NPV of the incremental revenue that recovers network cost [CNY].

    Per subscriber the operator gains ``max(0, tariff - existing spend)`` a month over what the
    village pays today; subscribers in year t are ``households x take_up[t]``; ``margin`` of it
    recovers network cost; year t's revenue is discounted from its end (:func:`discount_factors`).

    Parameters
    ----------
    tariff_monthly : array_like
        Tariff per subscriber [CNY/month].
    existing_spend_monthly : array_like
        What a subscriber pays for today's service [CNY/month].
    households : array_like
        Households per village.
    take_up : array_like
        Share of households subscribing in years 1..H (:func:`take_up_path`) [-].
    margin : float
        Share of retail revenue that recovers network cost [-].
    rate : float
        Real discount rate [1/yr].

    Returns
    -------
    numpy.ndarray
        Present value of the incremental revenue [CNY].
    """
    path = np.asarray(take_up, float)
    gain = np.maximum(
        np.asarray(tariff_monthly, float) - np.asarray(existing_spend_monthly, float), 0.0
    )
    subscriber_years = float(path @ discount_factors(rate, path.size))
    return gain * 12.0 * np.asarray(households, float) * subscriber_years * margin


def demand_subsidy_npv(
    tariff_monthly: np.ndarray,
    cap_monthly: np.ndarray,
    households: np.ndarray,
    take_up: np.ndarray,
    *,
    rate: float,
) -> np.ndarray:
    """NPV of the demand-side subsidy that brings the tariff down to each village's cap [CNY].

    ``max(0, tariff - cap)`` per subscriber and month, paid to subscribers (households x take-up
    in each year), discounted as :func:`revenue_npv`. Zero under the ``income_capped`` rule.
    """
    path = np.asarray(take_up, float)
    gap = np.maximum(np.asarray(tariff_monthly, float) - np.asarray(cap_monthly, float), 0.0)
    return (
        gap * 12.0 * np.asarray(households, float) * float(path @ discount_factors(rate, path.size))
    )


def site_shares(
    site_of: np.ndarray, population: np.ndarray, site_cost: dict[str, float]
) -> np.ndarray:
    """Each village's share of the cost of the shared site that serves it [CNY]: the one rule.

    A site's cost is split among the villages the plan serves from it in proportion to their
    population (equally when they have no population); villages not served through a site
    (``site_of == ""``) get 0. The shares of a site's villages sum to its cost.

    Parameters
    ----------
    site_of : array_like of str
        The site serving each village, "" for none.
    population : array_like
        Persons per village.
    site_cost : dict
        Site id -> the cost the plan pays for it [CNY] (built sites).

    Returns
    -------
    numpy.ndarray
        Site share per village [CNY].
    """
    site = np.asarray(site_of).astype(str)
    pop = np.asarray(population, float)
    out = np.zeros(site.size)
    for s in np.unique(site[site != ""]):
        members = site == s
        w = pop[members]
        w = w / w.sum() if w.sum() > 0 else np.full(w.size, 1.0 / w.size)
        out[members] = float(site_cost.get(s, 0.0)) * w
    return out


def subsidy(npv_cost: np.ndarray, site_share: np.ndarray, revenue_npv: np.ndarray) -> np.ndarray:
    """The supply-side subsidy a village needs: ``max(0, npv_cost + site_share - revenue_npv)`` [CNY].

    The one subsidy rule: every stage that reports a subsidy calls this function.

    Parameters
    ----------
    npv_cost : array_like
        NPV cost of the village's option [CNY].
    site_share : array_like
        Its share of a shared site's cost (:func:`site_shares`) [CNY].
    revenue_npv : array_like
        NPV of its incremental revenue (:func:`revenue_npv`) [CNY].

    Returns
    -------
    numpy.ndarray
        Subsidy [CNY], >= 0.
    """
    net = (
        np.asarray(npv_cost, float) + np.asarray(site_share, float) - np.asarray(revenue_npv, float)
    )
    return np.maximum(net, 0.0)


#: China's 2015-2019 universal-service pilots (电信普遍服务试点): central funds paid 30% of the
#: capital cost plus 6 years of operating cost (10 in border areas). MIIT and MOF, 关于开展电信
#: 普遍服务试点工作的通知 (2015); figures as reported with the pilot batches.
PILOT_CAPEX_SHARE = 0.3
PILOT_OPEX_YEARS = 6


def pilot_subsidy(
    capex: np.ndarray | float,
    opex_per_year: np.ndarray | float,
    rate: float,
    *,
    capex_share: float = PILOT_CAPEX_SHARE,
    opex_years: int = PILOT_OPEX_YEARS,
) -> np.ndarray | float:
    """What the 2015-2019 pilots' rule would pay [CNY, NPV]: a share of capex plus years of opex.

    Parameters
    ----------
    capex : array or float
        Capital cost, spent in year 0 [CNY].
    opex_per_year : array or float
        Operating cost, paid at the end of each year [CNY/yr].
    rate : float
        Real discount rate [1/yr] (the scenario's one rate).
    capex_share : float
        Share of capex paid (0.3 in the pilots).
    opex_years : int
        Years of opex paid (6 in the pilots; 10 in border areas).

    Returns
    -------
    array or float
        ``capex_share * capex + annuity_factor(rate, opex_years) * opex_per_year``.
    """
    return capex_share * np.asarray(capex, float) + annuity_factor(rate, opex_years) * np.asarray(
        opex_per_year, float
    )


def subscribers(households: np.ndarray, take_up: float) -> np.ndarray:
    """Subscribers of a village once take-up has ramped up: households times the final take-up.

    Sizes what scales with subscribers (customer equipment and drops, satellite capacity).

    Parameters
    ----------
    households : array_like
        Households per village [-].
    take_up : float
        Final share of households that subscribe [-] (the policy's ``take_up``).

    Returns
    -------
    numpy.ndarray
        Subscribers per village [-].
    """
    return np.asarray(households, dtype=float) * float(take_up)
