"""Command-line interface: ``universal-service plan REGION --scenario FILE --out DIR``."""

from __future__ import annotations

import contextlib
import json
import logging
import sys
from pathlib import Path
from typing import Annotated

import typer

from .errors import InputDataError, ScenarioError, SolverError

app = typer.Typer(
    help="Universal-service planner: cost every way of connecting every village, pick the "
    "cheapest plan meeting the policy, and report it.",
    no_args_is_help=True,
    add_completion=False,
)


# Arguments and options shared by the commands (one declaration, one help text).
RegionArg = Annotated[
    Path | None, typer.Argument(help="Region folder with region.toml (default: bundled)")
]
ScenarioOpt = Annotated[
    Path | None, typer.Option("--scenario", "-s", help="Scenario YAML (default: baseline)")
]
NameOpt = Annotated[str | None, typer.Option("--name", help="Named scenario inside the YAML file")]
OverrideOpt = Annotated[
    list[str] | None, typer.Option("--override", "-o", help="Override name from the file")
]
VerboseOpt = Annotated[bool, typer.Option("--verbose", "-v")]
OutOpt = Annotated[Path, typer.Option("--out", help="Output folder")]


def _quiet_highs() -> None:
    """Keep HiGHS's banner out of the command's output (:func:`milp.absorb_highs_banner`)."""
    from . import milp

    milp.absorb_highs_banner()


def _start(verbose: bool) -> None:
    """A command's set-up: log records at INFO with --verbose (else WARNING), no HiGHS banner."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    _quiet_highs()


def _fail(exc: Exception) -> None:
    typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code=2)


def _set_values(pairs: list[str]) -> dict[str, object]:
    """``--set key=value`` pairs as a dotted-key mapping; an empty value is an error, not null."""
    from . import scenarios

    empty = [
        p.split("=", 1)[0].strip() for p in pairs if "=" in p and not p.split("=", 1)[1].strip()
    ]
    if empty:
        raise ScenarioError(
            "; ".join(
                f"--set {k}= has an empty value: it is not read as null (that would silently "
                f"remove '{k}'). Give a value (e.g. --set {k}=1), or write --set {k}=null if "
                "you really mean to unset it"
                for k in empty
            )
        )
    return scenarios.parse_set(pairs)


@app.command()
def plan(
    region: RegionArg = None,
    scenario: ScenarioOpt = None,
    name: NameOpt = None,
    override: OverrideOpt = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="key=value applied last, e.g. policy.coverage_target=0.9"),
    ] = None,
    out: OutOpt = Path("out"),
    verbose: VerboseOpt = False,
) -> None:
    """Plan one scenario on a region, print the summary and write the results to --out."""
    result = _plan_and_write(region, scenario, name, override, set_, out, verbose)
    if result.plan.attrs.get("status") not in {"optimal", "feasible", "time_limit"}:
        raise typer.Exit(code=1)


def _plan_and_write(
    region: Path | None,
    scenario: Path | None,
    name: str | None,
    override: list[str] | None,
    set_: list[str] | None,
    out: Path,
    verbose: bool,
    with_rollout: bool = False,
):
    """Load, run and write one scenario; print its summary; errors exit with their message."""
    from . import outputs, report, scenarios

    _start(verbose)
    try:
        outputs.check_out_dir(out, report.OUTPUT_FILES)  # before the plan is computed
        sc = scenarios.load_scenario(
            scenario,
            scenario=name,
            overrides=override or (),
            set_values=_set_values(set_ or []),
        )
        if region is not None:
            sc.config = sc.config.model_copy(update={"region": str(region.resolve())})
        n = scenarios.stages(
            sc,
            with_allocation="allocation" in sc.config.model_fields_set,
            with_rollout=with_rollout,
        )
        with _progress(n, "stages") as bar:
            result = scenarios.run(sc, with_rollout=with_rollout, progress=lambda _: bar.update(1))
    except (InputDataError, ScenarioError, SolverError) as exc:
        _fail(exc)
    try:
        paths = report.write(result, out)
    except InputDataError as exc:
        _fail(exc)
    except OSError as exc:  # e.g. the disk filled up while writing
        _fail(
            OSError(
                f"--out {out}: could not write the outputs ({exc}); the folder still holds the "
                "previous output set, if any. Free space or fix the folder and run again."
            )
        )
    from . import runcache

    runcache.store(result, result.region.path)  # the dashboard starts from this plan
    typer.echo(report.format_summary(result))
    if result.rollout is not None:
        from . import rollout

        typer.echo(rollout.format_table(result.rollout))
    typer.echo("wrote: " + ", ".join(str(p) for p in paths.values()))
    if notice := report.time_limit_notice(result):
        typer.secho(f"warning: {notice}", fg=typer.colors.YELLOW, err=True)
    return result


@app.command("rollout")
def rollout_cmd(
    region: RegionArg = None,
    scenario: ScenarioOpt = None,
    name: NameOpt = None,
    override: OverrideOpt = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="key=value applied last, e.g. rollout.annual_budget_cny=3e7"),
    ] = None,
    out: OutOpt = Path("out"),
    verbose: VerboseOpt = False,
) -> None:
    """Plan a scenario, then schedule it over the years of its rollout section (budget and
    milestones); writes the plan's files with rollout.nc and rollout.csv. Exit 1 when a
    milestone cannot be met (the year is named)."""
    result = _plan_and_write(region, scenario, name, override, set_, out, verbose, True)
    if result.plan.attrs.get("status") not in {"optimal", "feasible", "time_limit"}:
        raise typer.Exit(code=1)
    if result.rollout is not None and result.rollout.attrs["status"] in {"infeasible", "error"}:
        typer.secho(f"error: {result.rollout.attrs['message']}", fg=typer.colors.RED, err=True)
        raise typer.Exit(code=1)


@app.command("allocate")
def allocate_cmd(
    region: RegionArg = None,
    scenario: ScenarioOpt = None,
    name: NameOpt = None,
    regime: Annotated[
        list[str] | None,
        typer.Option("--regime", "-r", help="lots, auction, fund or shared (repeat; default all)"),
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="key=value applied last, e.g. allocation.tolerance=0.05"),
    ] = None,
    out: OutOpt = Path("out"),
    verbose: VerboseOpt = False,
) -> None:
    """Allocate the obligation among operators under each regime; print and write the comparison."""
    from . import allocate, io, outputs, report, scenarios
    from .catalog import load_catalog

    _start(verbose)
    try:
        outputs.check_out_dir(out, report.OUTPUT_FILES)
        values = _set_values(set_ or [])
        if regime:
            values["allocation.regimes"] = list(regime)
        sc = scenarios.load_scenario(scenario, scenario=name, set_values=values)
        if region is not None:
            sc.config = sc.config.model_copy(update={"region": str(region.resolve())})
        reg = io.load_region(sc.region_path())
        ds = allocate.allocate(
            reg, sc.config, scenarios.policy_for(sc.config), load_catalog(sc.catalog_path())
        )
    except (InputDataError, ScenarioError, SolverError) as exc:
        _fail(exc)
    try:
        ds.attrs["provenance"] = json.dumps(scenarios.provenance(sc, reg.path), sort_keys=True)
        paths = report.write_allocation(ds, out)
    except InputDataError as exc:
        _fail(exc)
    except OSError as exc:
        _fail(OSError(f"--out {out}: could not write the outputs ({exc}); free space or fix it."))
    typer.echo(allocate.format_table(ds))
    typer.echo("wrote: " + ", ".join(str(p) for p in paths.values()))


def _progress(total: int, label: str):
    """A progress bar with counts and an estimate on a terminal; silent otherwise."""
    return typer.progressbar(
        length=total, label=label, file=sys.stderr, show_pos=True, show_eta=True
    )


def _write_set(out: Path, writers: dict, meta: dict) -> list[Path]:
    from . import outputs, report

    try:
        written = outputs.write_set(out, writers, owned=report.OUTPUT_FILES, meta=meta)
    except InputDataError as exc:
        _fail(exc)
    except OSError as exc:
        _fail(OSError(f"--out {out}: could not write the outputs ({exc}); free space or fix it."))
    return list(written.values())


@app.command()
def compare(
    scenario: Annotated[
        list[str], typer.Argument(help="Scenario files, or FILE:NAME for a named scenario")
    ],
    region: Annotated[
        Path | None, typer.Option("--region", help="Region folder for every scenario")
    ] = None,
    out: OutOpt = Path("out"),
    verbose: VerboseOpt = False,
) -> None:
    """Run several scenarios on one region; print the KPI table, write comparison.nc and kpis.csv."""
    from . import outputs, report, studies

    _start(verbose)
    try:
        outputs.check_out_dir(out, report.OUTPUT_FILES)
        with _progress(len(scenario), "scenarios") as bar:
            results = studies.run_many(scenario, region=region, progress=lambda _: bar.update(1))
        ds = studies.comparison(results)
        table = studies.kpis(results)
    except (InputDataError, ScenarioError, SolverError) as exc:
        _fail(exc)
    paths = _write_set(
        out,
        {
            "comparison.nc": lambda p: ds.to_netcdf(p),
            "kpis.csv": lambda p: table.to_csv(p, float_format="%.12g"),
        },
        {
            "scenarios": list(table.index),
            "command": "compare",
            "provenance": json.loads(ds.attrs["provenance"]),
        },
    )
    typer.echo(studies.format_kpis(table))
    typer.echo("wrote: " + ", ".join(str(p) for p in paths))


@app.command()
def sweep(
    region: RegionArg = None,
    scenario: ScenarioOpt = None,
    name: NameOpt = None,
    coverage: Annotated[
        str | None, typer.Option("--coverage", help="Coverage targets START:STOP:STEP")
    ] = None,
    budget: Annotated[
        str | None, typer.Option("--budget", help="Budgets START:STOP:STEP [CNY]")
    ] = None,
    shared_trench: Annotated[
        bool, typer.Option("--shared-trench", help="Design shared trenches at every point")
    ] = False,
    out: OutOpt = Path("out"),
    verbose: VerboseOpt = False,
) -> None:
    """The cost of coverage: a plan per coverage target (or budget); writes pareto.csv and .nc."""
    from . import outputs, report, scenarios, studies

    _start(verbose)
    try:
        outputs.check_out_dir(out, report.OUTPUT_FILES)
        if (coverage is None) == (budget is None):
            raise ScenarioError(
                "sweep: give exactly one of --coverage A:B:STEP or --budget A:B:STEP."
            )
        points = (
            studies.parse_range(coverage, "--coverage")
            if coverage is not None
            else studies.parse_range(budget or "", "--budget")
        )
        sc = scenarios.load_scenario(scenario, scenario=name)
        if region is not None:
            sc.config = sc.config.model_copy(update={"region": str(region.resolve())})
        kw = {"coverage": points} if coverage is not None else {"budget": points}
        with _progress(len(points), "points") as bar:
            table = studies.sweep(
                sc, shared_trench=shared_trench, progress=lambda _: bar.update(1), **kw
            )
        ds = studies.pareto_dataset(table, sc)
    except (InputDataError, ScenarioError, SolverError) as exc:
        _fail(exc)
    paths = _write_set(
        out,
        {
            "pareto.csv": lambda p: table.to_csv(p, index=False, float_format="%.12g"),
            "pareto.nc": lambda p: ds.to_netcdf(p),
        },
        {"scenario": sc.name, "command": "sweep", "provenance": json.loads(ds.attrs["provenance"])},
    )
    with pd_options():
        typer.echo(table.to_string(index=False))
    typer.echo("wrote: " + ", ".join(str(p) for p in paths))


@app.command()
def montecarlo(
    region: RegionArg = None,
    scenario: Annotated[
        Path | None,
        typer.Option("--scenario", "-s", help="Scenario YAML with an uncertainty section"),
    ] = None,
    name: NameOpt = None,
    draws: Annotated[int | None, typer.Option(help="Number of draws (default: the file's)")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed (default: the file's)")] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            help="Dask worker processes (default: one per core; 0: serial, no Dask)", min=0
        ),
    ] = None,
    scheduler: Annotated[
        str | None, typer.Option(help="Address of a running Dask scheduler (instead of local)")
    ] = None,
    out: OutOpt = Path("out"),
) -> None:
    """Plan a scenario once per draw of its uncertain costs, take-up and demand (the draws in
    parallel on Dask when it is installed; the result is the serial one, draw for draw)."""
    from . import outputs, report, scenarios, uncertainty

    _quiet_highs()
    try:
        outputs.check_out_dir(out, report.OUTPUT_FILES)
        sc = scenarios.load_scenario(scenario, scenario=name)
        if region is not None:
            sc.config = sc.config.model_copy(update={"region": str(region.resolve())})
        n = draws or sc.config.uncertainty.draws
        parallel = scheduler is not None or (workers != 0 and n > 1 and _has_dask())
        with (
            uncertainty.dask_client(workers, scheduler)
            if parallel
            else contextlib.nullcontext() as client,
            _progress(n, "draws") as bar,
        ):
            ds = uncertainty.monte_carlo(
                sc, draws=draws, seed=seed, progress=lambda _: bar.update(1), client=client
            )
        table = uncertainty.draws_table(ds)
    except (InputDataError, ScenarioError, SolverError) as exc:
        _fail(exc)
    paths = _write_set(
        out,
        {
            "montecarlo.nc": lambda p: ds.to_netcdf(p),
            "montecarlo.csv": lambda p: table.to_csv(p, float_format="%.12g"),
        },
        {
            "scenario": sc.name,
            "command": "montecarlo",
            "provenance": json.loads(ds.attrs["provenance"]),
        },
    )
    typer.echo(uncertainty.format_summary(ds))
    typer.echo("wrote: " + ", ".join(str(p) for p in paths))


@app.command()
def sensitivity(
    region: RegionArg = None,
    scenario: Annotated[
        Path | None,
        typer.Option("--scenario", "-s", help="Scenario YAML with an uncertainty section"),
    ] = None,
    name: NameOpt = None,
    workers: Annotated[
        int | None,
        typer.Option(
            help="Dask worker processes (default: one per core; 0: serial, no Dask)", min=0
        ),
    ] = None,
    scheduler: Annotated[
        str | None, typer.Option(help="Address of a running Dask scheduler (instead of local)")
    ] = None,
    out: OutOpt = Path("out"),
) -> None:
    """NPV cost and subsidy with each uncertain parameter at its low and high end, one at a
    time (the ranges of the scenario's uncertainty section); writes sensitivity.csv."""
    from . import outputs, report, scenarios, uncertainty

    _quiet_highs()
    try:
        outputs.check_out_dir(out, report.OUTPUT_FILES)
        sc = scenarios.load_scenario(scenario, scenario=name)
        if region is not None:
            sc.config = sc.config.model_copy(update={"region": str(region.resolve())})
        n = 1 + 2 * len(sc.config.uncertainty.parameters)
        parallel = scheduler is not None or (workers != 0 and _has_dask())
        with (
            uncertainty.dask_client(workers, scheduler)
            if parallel
            else contextlib.nullcontext() as client,
            _progress(n, "plans") as bar,
        ):
            table = uncertainty.sensitivity(sc, progress=lambda _: bar.update(1), client=client)
    except (InputDataError, ScenarioError, SolverError) as exc:
        _fail(exc)
    paths = _write_set(
        out,
        {"sensitivity.csv": lambda p: table.to_csv(p, float_format="%.12g")},
        {
            "scenario": sc.name,
            "command": "sensitivity",
            "provenance": json.loads(table.attrs["provenance"]),
        },
    )
    typer.echo(uncertainty.format_sensitivity(table))
    typer.echo("wrote: " + ", ".join(str(p) for p in paths))


@app.command()
def national(
    provinces: Annotated[
        str | None,
        typer.Option(help="Province adcodes, comma-separated (520000 = Guizhou); all if omitted"),
    ] = None,
    scenario: Annotated[
        Path | None, typer.Option("--scenario", help="Scenario YAML (default: the baseline)")
    ] = None,
    counties: Annotated[
        int | None, typer.Option(help="Only the first N counties of the provinces, by code", min=1)
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(help="Dask worker processes (default: one per core; 0: serial)", min=0),
    ] = None,
    scheduler: Annotated[
        str | None, typer.Option(help="Address of a running Dask scheduler (instead of local)")
    ] = None,
    out: OutOpt = Path("out/national"),
) -> None:
    """Plan every rural village of some provinces from the national pack (data/china): each
    county built and costed on its own (in parallel on Dask), all coupled by the scenario's
    coverage target; writes villages.parquet, plan.nc, counties.csv, provinces.csv, map.png."""
    from . import national as nat
    from . import nationalpack, outputs, scenarios, uncertainty

    _quiet_highs()
    try:
        outputs.check_out_dir(out, (*nat.OUTPUT_FILES, "failed.csv"))
        sc = scenarios.load_scenario(scenario)
        pack = nationalpack.load_pack()
        wanted = [p.strip() for p in provinces.split(",") if p.strip()] if provinces else None
        codes = pack.county_codes(wanted)[: counties or None]
        parallel = scheduler is not None or (workers != 0 and len(codes) > 1 and _has_dask())
        with (
            uncertainty.dask_client(workers, scheduler)
            if parallel
            else contextlib.nullcontext() as client,
            _progress(len(codes), "counties") as bar,
        ):
            result = nat.run(
                sc,
                wanted,
                pack=pack,
                client=client,
                counties=codes,
                progress=lambda _: bar.update(1),
            )
        paths = nat.write(result, pack, out, {"scenario": sc.name, "command": "national"})
    except (InputDataError, ScenarioError, SolverError) as exc:
        _fail(exc)
    except OSError as exc:
        _fail(OSError(f"--out {out}: could not write the outputs ({exc}); free space or fix it."))
    typer.echo(nat.format_summary(result))
    typer.echo("wrote: " + ", ".join(str(p) for p in paths.values()))
    if len(result.failed):
        raise typer.Exit(code=1)


def _has_dask() -> bool:
    """Whether Dask's ``distributed`` can be imported."""
    import importlib.util

    return importlib.util.find_spec("distributed") is not None


def pd_options():
    """Wide, readable tables on the terminal."""
    import pandas as pd

    return pd.option_context("display.width", 200, "display.float_format", "{:,.4g}".format)


@app.command("new-region")
def new_region(
    out: Annotated[Path, typer.Argument(help="Region folder to create (new or empty)")],
    villages: Annotated[Path, typer.Option(help="Villages: CSV with lon/lat, or GPKG")],
    districts: Annotated[Path, typer.Option(help="District polygons (GPKG, GeoJSON, SHP)")],
    dem: Annotated[Path, typer.Option(help="Elevation GeoTIFF [m]")],
    pops: Annotated[Path, typer.Option(help="Fiber points of presence: CSV with lon/lat, or GPKG")],
    operators: Annotated[Path, typer.Option(help="Operators CSV (operator_id, revenue_cny, ...)")],
    towers: Annotated[Path | None, typer.Option(help="Existing towers (optional)")] = None,
    roads: Annotated[Path | None, typer.Option(help="Roads (optional)")] = None,
    name: Annotated[str | None, typer.Option(help="Region name")] = None,
    crs: Annotated[
        str | None, typer.Option(help="Metric CRS, e.g. EPSG:32648 (default: UTM)")
    ] = None,
    gcj02: Annotated[
        list[str] | None,
        typer.Option("--gcj02", help="A layer given in GCJ-02 (Amap) coordinates (repeat)"),
    ] = None,
) -> None:
    """Make a region folder from plain files, validate it, and say how to plan it."""
    from . import newregion

    files = {"villages": villages, "districts": districts, "dem": dem, "pops": pops}
    files |= {"operators": operators, "towers": towers, "roads": roads}
    try:
        region = newregion.region_from_files(
            out,
            {k: v for k, v in files.items() if v is not None},
            name=name,
            crs=crs,
            gcj02_layers=gcj02 or (),
        )
    except InputDataError as exc:
        _fail(exc)
    typer.echo(
        f"wrote {out}: {len(region.villages)} villages in {len(region.districts)} districts, "
        f"{len(region.pops)} PoPs, {len(region.towers)} towers; CRS {region.crs.to_string()}"
    )
    for w in region.warnings:
        typer.echo(f"  warning: {w}")
    typer.echo(f"next: universal-service plan {out} --out {out}_plan")


@app.command()
def validate(
    region: Annotated[Path, typer.Argument(help="Region folder with region.toml")],
) -> None:
    """Load and validate a region; list every problem found.

    Beyond the layer checks, each village's ``existing_service`` is checked against what the
    existing towers and PoPs provide under the plan's radio and route tests
    (:func:`universal_service.baseline.unsupported`); labels the network does not support are
    warnings.
    """
    from . import baseline, io

    try:
        r = io.load_region(region)
    except InputDataError as exc:
        _fail(exc)
    bad = baseline.unsupported(r)
    if len(bad):
        shown = "; ".join(
            f"{b.village_id} '{b.existing_service}' (network: '{b.provided}')"
            for b in bad.head(5).itertuples()
        )
        r.warnings.append(
            f"villages.existing_service: {len(bad)} villages are labelled better than the "
            f"existing towers and PoPs provide under the plan's radio and route tests ({shown}"
            f"{'; ...' if len(bad) > 5 else ''}); the plan counts them as served by what they "
            "claim. Fix the labels, or add the towers (towers.technology) and points of presence "
            "that serve them, or state the fiber reach ([meta] fiber_reach_km in region.toml)."
        )
    typer.echo(
        f"{r.name}: {len(r.villages)} villages in {len(r.districts)} districts, "
        f"{len(r.pops)} PoPs, {len(r.towers)} towers, {len(r.roads)} road lines, "
        f"DEM {r.dem.sizes['y']}x{r.dem.sizes['x']} in {r.crs.to_string()}: OK"
        + (f", with {len(r.warnings)} warnings:" if r.warnings else "")
    )
    for w in r.warnings:
        typer.echo(f"  - {w}")


@app.command()
def dashboard(port: Annotated[int, typer.Option(help="Port to serve on")] = 8501) -> None:
    """Start the Streamlit dashboard (app.py of a source checkout, or of the current folder)."""
    import subprocess

    # app.py is not package code (the library never imports streamlit): it sits at the root of a
    # source checkout, next to the package folder
    found = [
        p
        for p in (Path(__file__).resolve().parents[1] / "app.py", Path.cwd() / "app.py")
        if p.is_file()
    ]
    if not found:
        _fail(
            FileNotFoundError(
                "app.py not found next to the package nor in the current folder: run "
                "`universal-service dashboard` from a source checkout of the project, or "
                "`streamlit run path/to/app.py`."
            )
        )
    app_py = found[0]
    raise typer.Exit(
        subprocess.call(
            [
                sys.executable,
                "-m",
                "streamlit",
                "run",
                str(app_py),
                "--server.port",
                str(port),
                "--server.headless",
                "true",
            ]
        )
    )


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    app()
