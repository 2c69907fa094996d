"""Monte Carlo and one-at-a-time sensitivity over unit costs, take-up and demand."""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import json
import os
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from . import io, milp, report, scenarios
from .catalog import Catalog, load_catalog
from .errors import ScenarioError
from .schema import PolicyConfig, ScenarioConfig

#: The technology label of a village a draw leaves unserved.
UNSERVED = "unserved"


def draw_parameters(parameters: dict[str, list[float]], draws: int, seed: int) -> pd.DataFrame:
    """The parameter values of every draw, reproducible from ``seed``.

    Each parameter is drawn from ``[low, high]`` (uniform) or ``[low, mode, high]`` (triangular)
    by ``numpy.random.default_rng(seed)``, draw by draw and within a draw in sorted key order.

    Returns
    -------
    pandas.DataFrame
        One row per draw (index ``draw`` 0..draws-1), one column per parameter (sorted).
    """
    rng = np.random.default_rng(seed)
    keys = sorted(parameters)
    rows = []
    for _ in range(draws):
        row = {}
        for k in keys:
            r = parameters[k]
            row[k] = rng.uniform(r[0], r[1]) if len(r) == 2 else rng.triangular(r[0], r[1], r[2])
        rows.append(row)
    return pd.DataFrame(rows, columns=keys).rename_axis("draw")


def apply_draw(
    config: ScenarioConfig, catalog: Catalog, region: io.Region, values: dict[str, float]
) -> tuple[ScenarioConfig, Catalog, io.Region]:
    """The scenario, catalog and region of one draw.

    ``policy.<field>`` sets the field (rounded for integer fields); ``catalog.<tech>.<key>``
    multiplies that catalog number; ``demand.population`` multiplies every village's population
    and households.

    Raises
    ------
    ScenarioError
        A catalog key that is not a number of the catalog, or a policy value out of its range.
    """
    policy: dict[str, Any] = {}
    techs = copy.deepcopy(catalog.technologies)
    villages = region.villages
    for key, v in values.items():
        if key.startswith("policy."):
            field = key[7:]
            is_int = PolicyConfig.model_fields[field].annotation in (int, "int")
            policy[field] = int(round(v)) if is_int else float(v)
        elif key.startswith("catalog."):
            _, tech, name = key.split(".")
            if not isinstance(techs.get(tech, {}).get(name), (int, float)):
                raise ScenarioError(
                    f"uncertainty.parameters '{key}': the catalog has no number {tech}.{name}; "
                    f"numbers of {tech}: "
                    f"{sorted(k for k, x in techs.get(tech, {}).items() if isinstance(x, (int, float)))}"
                )
            techs[tech][name] = techs[tech][name] * v
        elif key == "demand.population":
            villages = villages.assign(
                population=villages["population"] * v, households=villages["households"] * v
            )
    data = config.model_dump()
    data["policy"].update(policy)
    try:
        cfg = ScenarioConfig.model_validate(data)
    except Exception as exc:  # a drawn value outside the schema's range
        raise ScenarioError(f"uncertainty: a drawn value is not a valid policy: {exc}") from None
    return (
        cfg,
        dataclasses.replace(catalog, technologies=techs),
        dataclasses.replace(region, villages=villages),
    )


def _one_draw(
    scenario: scenarios.Scenario,
    catalog: Catalog,
    region: io.Region,
    values: dict[str, float],
    shared_trench: bool,
) -> tuple[dict[str, Any], pd.Series]:
    """Plan one draw: its KPIs and the technology each village gets (a task of its own)."""
    c, cat, reg = apply_draw(scenario.config, catalog, region, values)
    data = c.model_dump()
    data["network"]["shared_trench"] = shared_trench
    sc = dataclasses.replace(scenario, config=ScenarioConfig.model_validate(data))
    r = scenarios.run(sc, region=reg, catalog=cat, with_baseline=False, with_allocation=False)
    a = r.plan.attrs
    tech = r.plan["technology"].values.astype(str)
    tech = np.where(r.plan["served"].values.astype(bool), tech, UNSERVED)
    row = {
        "total_cost": float(a.get("total_npv_cost", np.nan)),
        "subsidy": float(a.get("total_subsidy", np.nan)),
        "coverage_population": report.coverage_shares(r.plan)[0],
        "status": str(a.get("status", "")),
    }
    return row, pd.Series(tech, index=r.plan["village"].values.astype(str))


def _on_dask(
    client: Any, args: list[tuple], progress: Callable[[str], None] | None
) -> list[tuple[dict[str, Any], pd.Series]]:
    """The draws as tasks on a Dask client (each retried once); results in draw order."""
    from distributed import as_completed

    scenario, catalog, region = client.scatter(list(args[0][:3]), broadcast=True)
    futures = [
        client.submit(_one_draw, scenario, catalog, region, a[3], a[4], retries=1, pure=False)
        for a in args
    ]
    index = {f.key: d for d, f in enumerate(futures)}
    for f in as_completed(futures):
        if f.status == "error":
            raise ScenarioError(f"Monte Carlo draw {index[f.key]} failed: {f.exception()!r}")
        if progress:
            progress(f"draw {index[f.key]}")
    return client.gather(futures)


def monte_carlo(
    scenario: scenarios.Scenario,
    *,
    draws: int | None = None,
    seed: int | None = None,
    shared_trench: bool = False,
    progress: Callable[[str], None] | None = None,
    client: Any = None,
) -> xr.Dataset:
    """Plan the scenario once per draw of its uncertain parameters (``uncertainty`` section).

    Parameters
    ----------
    scenario : Scenario
    draws, seed : int, optional
        Override ``uncertainty.draws`` and ``uncertainty.seed``.
    shared_trench : bool
        Design shared trenches in every draw (slower); by default own fiber routes.
    progress : callable, optional
        Called after each draw.
    client : distributed.Client, optional
        Run the draws as tasks on this Dask client (:func:`dask_client` makes one); the result
        is the serial run's, draw for draw.

    Returns
    -------
    xarray.Dataset
        Dims ``draw``, ``village``, ``parameter``, ``technology``: ``value`` (draw, parameter),
        ``technology_chosen`` (draw, village; :data:`UNSERVED` when unserved), ``total_cost``
        and ``subsidy`` [CNY, NPV], ``coverage_population``, ``status`` (draw), and
        ``technology_share`` (village, technology): the share of draws giving each village each
        technology. ``attrs``: seed, draws and the scenario's provenance.
    """
    cfg = scenario.config
    unc = cfg.uncertainty
    if not unc.parameters:
        raise ScenarioError(
            "the scenario has no uncertainty.parameters: add e.g. "
            "{policy.take_up: [0.3, 0.4, 0.5], catalog.fiber.capex_cny_per_km: [0.8, 1.3]}."
        )
    n, s = draws or unc.draws, unc.seed if seed is None else seed
    table = draw_parameters(unc.parameters, n, s)
    region = io.load_region(scenario.region_path())
    catalog = load_catalog(scenario.catalog_path())
    args = [(scenario, catalog, region, table.loc[d].to_dict(), shared_trench) for d in range(n)]
    if client is not None:
        results = _on_dask(client, args, progress)
    else:
        results = []
        for d, a in enumerate(args):
            results.append(_one_draw(*a))
            if progress:
                progress(f"draw {d}")
    rows = [r for r, _ in results]
    techs = [t for _, t in results]
    chosen = pd.DataFrame(techs).reset_index(drop=True)
    villages = sorted(chosen.columns)
    chosen = chosen[villages].fillna(UNSERVED)
    labels = sorted(set(chosen.to_numpy().ravel()))
    share = np.stack([(chosen.to_numpy() == t).mean(axis=0) for t in labels], axis=1)
    per = pd.DataFrame(rows)
    ds = xr.Dataset(
        {
            "value": (("draw", "parameter"), table.to_numpy(float)),
            "technology_chosen": (("draw", "village"), chosen.to_numpy().astype(str)),
            "total_cost": ("draw", per["total_cost"].to_numpy(), {"units": "CNY"}),
            "subsidy": ("draw", per["subsidy"].to_numpy(), {"units": "CNY"}),
            "coverage_population": ("draw", per["coverage_population"].to_numpy()),
            "status": ("draw", per["status"].to_numpy().astype(str)),
            "technology_share": (("village", "technology"), share),
        },
        coords={
            "draw": np.arange(n),
            "parameter": list(table.columns),
            "village": villages,
            "technology": labels,
        },
    )
    ds.attrs.update(
        seed=int(s),
        draws=int(n),
        provenance=json.dumps(scenarios.provenance(scenario, region.path), sort_keys=True),
    )
    return ds


def draws_table(ds: xr.Dataset) -> pd.DataFrame:
    """One row per draw: the parameter values, total cost, subsidy, coverage and status."""
    t = ds["value"].to_pandas()
    for v in ("total_cost", "subsidy", "coverage_population", "status"):
        t[v] = ds[v].values
    return t


def format_summary(ds: xr.Dataset) -> str:
    """Mean and 5th / 50th / 95th percentiles of total cost and subsidy, and the villages whose
    technology changes between draws (as ``universal-service montecarlo`` prints it)."""
    lines = [f"Monte Carlo: {ds.attrs['draws']} draws, seed {ds.attrs['seed']}"]
    lines.append(f"{'':<26}{'mean':>15}{'p5':>15}{'p50':>15}{'p95':>15}")
    for v, label in (("total_cost", "NPV cost [CNY]"), ("subsidy", "NPV subsidy [CNY]")):
        x = ds[v].values
        p = np.nanpercentile(x, [5, 50, 95])
        lines.append(f"{label:<26}{np.nanmean(x):>15,.0f}" + "".join(f"{q:>15,.0f}" for q in p))
    top = ds["technology_share"].max("technology").values
    lines.append(
        f"villages whose technology changes between draws: {int((top < 1 - 1e-12).sum())} of "
        f"{ds.sizes['village']}"
    )
    return "\n".join(lines)


def base_value(key: str, config: ScenarioConfig) -> float:
    """A parameter's value in the scenario as given: the policy field's value, or 1 for a
    catalog or demand multiplier."""
    if key.startswith("policy."):
        return float(getattr(config.policy, key[7:]))
    return 1.0


def sensitivity(
    scenario: scenarios.Scenario,
    *,
    shared_trench: bool = False,
    progress: Callable[[str], None] | None = None,
    client: Any = None,
) -> pd.DataFrame:
    """One at a time: NPV cost and subsidy with each uncertain parameter at the low and at the
    high end of its range (``uncertainty.parameters``), everything else as the scenario gives it.

    Parameters
    ----------
    scenario : Scenario
    shared_trench : bool
        Design shared trenches in every run (slower); by default own fiber routes.
    progress : callable, optional
        Called after each run.
    client : distributed.Client, optional
        Run the 1 + 2 x parameters plans as tasks on this Dask client.

    Returns
    -------
    pandas.DataFrame
        One row per parameter, the widest swing of NPV cost first: ``low``, ``base``, ``high``
        (the parameter's values: a policy field's own, or a multiplier of the catalog or the
        population), ``npv_cost_low``, ``npv_cost_high``, ``subsidy_low``, ``subsidy_high``
        [CNY, NPV], ``coverage_low``, ``coverage_high`` (population share), ``status_low``,
        ``status_high`` (of each plan: a ``time_limit`` one is within its gap), ``swing_npv_cost``
        and ``swing_subsidy`` (high minus low [CNY]). ``attrs``: ``base_npv_cost``,
        ``base_subsidy``, ``base_coverage``, ``statuses`` (of every run) and the provenance.
    """
    cfg = scenario.config
    params = cfg.uncertainty.parameters
    if not params:
        raise ScenarioError(
            "the scenario has no uncertainty.parameters to vary: add e.g. "
            "{policy.take_up: [0.3, 0.4, 0.5], catalog.fiber.capex_cny_per_km: [0.8, 1.3]}."
        )
    keys = sorted(params)
    region = io.load_region(scenario.region_path())
    catalog = load_catalog(scenario.catalog_path())
    cases: list[dict[str, float]] = [{}]
    for k in keys:
        cases += [{k: params[k][0]}, {k: params[k][-1]}]
    args = [(scenario, catalog, region, case, shared_trench) for case in cases]
    if client is not None:
        results = _on_dask(client, args, progress)
    else:
        results = []
        for i, a in enumerate(args):
            results.append(_one_draw(*a))
            if progress:
                progress(f"run {i}")
    rows = [r for r, _ in results]
    out = []
    for i, k in enumerate(keys):
        lo, hi = rows[1 + 2 * i], rows[2 + 2 * i]
        out.append(
            {
                "parameter": k,
                "low": params[k][0],
                "base": base_value(k, cfg),
                "high": params[k][-1],
                "npv_cost_low": lo["total_cost"],
                "npv_cost_high": hi["total_cost"],
                "subsidy_low": lo["subsidy"],
                "subsidy_high": hi["subsidy"],
                "coverage_low": lo["coverage_population"],
                "coverage_high": hi["coverage_population"],
                "status_low": lo["status"],
                "status_high": hi["status"],
            }
        )
    table = pd.DataFrame(out).set_index("parameter")
    table["swing_npv_cost"] = table["npv_cost_high"] - table["npv_cost_low"]
    table["swing_subsidy"] = table["subsidy_high"] - table["subsidy_low"]
    table = table.iloc[np.argsort(-table["swing_npv_cost"].abs().to_numpy(), kind="stable")]
    table.attrs.update(
        base_npv_cost=rows[0]["total_cost"],
        base_subsidy=rows[0]["subsidy"],
        base_coverage=rows[0]["coverage_population"],
        statuses=",".join(sorted({r["status"] for r in rows})),
        provenance=json.dumps(scenarios.provenance(scenario, region.path), sort_keys=True),
    )
    return table


def format_sensitivity(table: pd.DataFrame) -> str:
    """The sensitivity table as ``universal-service sensitivity`` prints it [CNY, NPV]."""
    a = table.attrs
    lines = [
        f"Sensitivity (one at a time) around NPV cost CNY {a['base_npv_cost']:,.0f}, subsidy "
        f"CNY {a['base_subsidy']:,.0f}; widest swing first",
        f"  {'parameter':<46} {'low':>6} {'base':>6} {'high':>6}"
        f" {'NPV cost low':>14} {'NPV cost high':>14} {'subsidy low':>14} {'subsidy high':>14}",
    ]
    for k, r in table.iterrows():
        lines.append(
            f"  {k:<46} {r.low:>6.3g} {r.base:>6.3g} {r.high:>6.3g}"
            f" {r.npv_cost_low:>14,.0f} {r.npv_cost_high:>14,.0f}"
            f" {r.subsidy_low:>14,.0f} {r.subsidy_high:>14,.0f}"
        )
    lines.append(f"  plan statuses: {a['statuses']}")
    return "\n".join(lines)


@contextlib.contextmanager
def dask_client(workers: int | None = None, scheduler: str | None = None) -> Iterator[Any]:
    """A Dask client: of the cluster at ``scheduler``, or of a ``LocalCluster`` of ``workers``
    single-threaded processes (the solver is single-threaded; default: one per core).

    Raises
    ------
    ScenarioError
        Dask's ``distributed`` is not installed (``pip install "universal-service[dask]"``), or
        the scheduler cannot be reached.
    """
    try:
        from distributed import Client, LocalCluster
    except ImportError as exc:
        raise ScenarioError(
            'Dask is not installed: pip install "universal-service[dask]", or run serially.'
        ) from exc
    if scheduler:
        try:
            client = Client(scheduler, timeout="20s")
        except OSError as exc:
            raise ScenarioError(f"--scheduler {scheduler}: cannot connect ({exc}).") from exc
        try:
            yield client
        finally:
            client.close()
        return
    import dask

    n = workers or os.cpu_count() or 1
    # ":0", not None: with None the scheduler's HTTP routes still take the default port 8787,
    # so two clusters on one machine (two test workers, two runs) clash.
    # Dask starts its workers with MALLOC_TRIM_THRESHOLD_=65536, which also turns off glibc's
    # adaptive mmap threshold: every array over 128 KiB is then a fresh mmap, page-faulted
    # in and unmapped when freed. A county's costing ran 20% slower so (18.6 s against 15.5 s
    # on 46 counties, 6.6x the minor page faults); the workers keep glibc's defaults here (a
    # MALLOC_TRIM_THRESHOLD_ set in the environment still applies).
    unset = {"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}
    with dask.config.set(unset):
        cluster = LocalCluster(
            n_workers=n, threads_per_worker=1, processes=True, dashboard_address=":0"
        )
    with cluster, Client(cluster) as client:
        _quiet_workers(client)
        try:
            yield client
        finally:
            _release_all(client)


def _quiet_workers(client: Any) -> None:
    """Keep HiGHS's banner out of the terminal the local workers share: a worker plugin runs
    :func:`milp.absorb_highs_banner` in each worker (Dask also runs a registered plugin's set-up
    on workers that join later, such as a restarted one)."""
    from distributed.diagnostics.plugin import WorkerPlugin

    class QuietHighs(WorkerPlugin):
        idempotent = True

        def setup(self, worker: Any) -> None:
            milp.absorb_highs_banner()

    client.register_plugin(QuietHighs(), name="universal-service-quiet-highs")


def _release_all(client: Any, timeout_s: float = 30.0) -> None:
    """Release every result the client still holds and wait until the workers have freed them.

    A worker busy freeing a large memory (the whole country's county options, about 1.6 GB)
    when the scheduler closes misses its heartbeat and logs a traceback. Freeing first, while
    the scheduler is up, removes that traceback; a worker whose process still takes over 4 s to
    exit is then killed by its nanny with a one-line warning (harmless: the outputs are written
    by then). Waits at most ``timeout_s`` [s]; a cluster that does not answer is closed anyway.
    """
    import time

    from distributed import Future

    deadline = time.monotonic() + timeout_s
    with contextlib.suppress(Exception):  # closing must not mask the run's own error
        client.cancel([Future(key, client) for key in list(client.futures)])
        while time.monotonic() < deadline:
            held = client.run(_held_keys)
            if not any(held.values()):
                return
            time.sleep(0.1)


def _held_keys(dask_worker: Any) -> int:
    """Number of results a Dask worker holds (run on the worker by ``Client.run``)."""
    return len(dask_worker.data)
