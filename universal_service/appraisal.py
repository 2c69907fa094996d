"""Money over time: present values, the affordable tariff, revenue, net cost and subsidy."""

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


def affordable_tariff(
    income_monthly: np.ndarray,
    household_size: np.ndarray,
    *,
    share: float,
    list_tariff: float,
) -> np.ndarray:
    """Monthly tariff a household can afford, capped at the list tariff [CNY/month].

    The cap is ``share`` of household income (A4AI "1 for 2" and Broadband Commission target 2:
    entry broadband at most 2% of monthly income).

    Parameters
    ----------
    income_monthly : array_like
        Income per person per month [CNY].
    household_size : array_like
        Persons per household.
    share : float
        Maximum share of household income.
    list_tariff : float
        The operator's list price [CNY/month].

    Returns
    -------
    numpy.ndarray
        Affordable tariff [CNY/month].
    """
    cap = share * np.asarray(income_monthly, float) * np.asarray(household_size, float)
    return np.minimum(cap, list_tariff)


def revenue_npv(
    tariff_cny_per_month: np.ndarray,
    subscribers: np.ndarray,
    *,
    margin: float,
    rate: float,
    horizon_years: int,
) -> np.ndarray:
    """NPV of the retail revenue share that recovers network cost [CNY].

    Parameters
    ----------
    tariff_cny_per_month : array_like
        Tariff per subscriber [CNY/month].
    subscribers : array_like
        Subscribing households.
    margin : float
        Share of retail revenue that recovers network cost.
    rate : float
        Real discount rate [1/yr].
    horizon_years : int
        Appraisal horizon [yr]; revenue at the end of each year.

    Returns
    -------
    numpy.ndarray
        Present value of the revenue [CNY].
    """
    tariff = np.asarray(tariff_cny_per_month, float)
    return tariff * 12.0 * subscribers * margin * annuity_factor(rate, horizon_years)


def net_cost_and_subsidy(cost: np.ndarray, revenue: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Net cost of an option (cost less revenue) and the subsidy it needs (net cost floored at 0).

    Parameters
    ----------
    cost : array_like
        NPV cost of each option [CNY].
    revenue : array_like
        NPV of the revenue of each option's village [CNY].

    Returns
    -------
    (net_cost, subsidy) : tuple of numpy.ndarray
        Net cost [CNY] (negative when revenue pays for the option) and subsidy [CNY], >= 0.
    """
    net = np.asarray(cost, float) - np.asarray(revenue, float)
    return net, np.maximum(net, 0.0)
