"""Streamlit dashboard: service today, the plan, districts, allocation, scenarios, downloads.

Run with ``streamlit run app.py`` (or ``universal-service dashboard``). The region is the bundled
one unless ``UNIVERSAL_SERVICE_REGION`` names another folder. This file only wires widgets to
library calls: runs come from :mod:`universal_service.runcache` (kept on disk, keyed by their
inputs), everything drawn or downloaded from :mod:`universal_service.views`.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pandas as pd
import pydeck as pdk
import streamlit as st
import yaml

from universal_service import io, plot, report, runcache, scenarios, uploads, views
from universal_service.errors import InputDataError, ScenarioError

st.set_page_config(page_title="Universal-service planner", layout="wide")
# Stale results are drawn faded. The page keeps the same elements in the same places whether
# or not the results are stale (the notice and its style fill fixed slots), so a rerun never
# remounts the tabs and never sends the reader back to the first one.
STALE_STYLE = "<style>.st-key-results{opacity:0.45;filter:grayscale(60%);}</style>"
style_slot = st.empty()

REGION_DIR = Path(os.environ.get("UNIVERSAL_SERVICE_REGION", scenarios.DEFAULT_REGION))
SCENARIO_DIR = scenarios.DATA_DIR / "scenarios"
BASE = "(base)"
state = st.session_state


@st.cache_resource(show_spinner="Loading region...", max_entries=4)
def load_region(path: str) -> io.Region:
    return io.load_region(path)


@st.cache_data(show_spinner=False, max_entries=4)
def hillshade(path: str) -> dict:
    r = load_region(path)
    return views.hillshade(r.dem, r.crs)


def scenario_names(path: str) -> list[str]:
    raw = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    return [BASE, *sorted((raw.get("scenarios") or {}).keys())]


def load(settings: tuple) -> scenarios.Scenario:
    _, sfile, sname, items = settings
    return scenarios.load_scenario(
        sfile, scenario=None if sname == BASE else sname, set_values=dict(items)
    )


def solve(settings: tuple) -> scenarios.ScenarioResult:
    """The run of these settings: this session's copy, the disk cache, or solved now."""
    runs = state.setdefault("runs", {})
    if settings not in runs:
        region_dir = settings[0]
        sc = load(settings)
        stages = scenarios.stages(sc)
        with st.status(f"Planning: {describe(settings)}", expanded=True) as box:
            bar = st.progress(0.0, text="costing every option of every village...")
            done = []

            def tick(stage: str) -> None:
                done.append(stage)
                bar.progress(min(len(done) / stages, 1.0), text=f"{stage} done")

            result, hit = runcache.cached_run(
                sc, region_dir, region=load_region(region_dir), progress=tick
            )
            box.update(label="Plan read from the cache" if hit else "Plan solved", state="complete")
        runs[settings] = result
        while len(runs) > 6:
            runs.pop(next(iter(runs)))
    return runs[settings]


def download_files(settings: tuple, alloc=None) -> dict[str, bytes]:
    """The download files of a run, made once per run (the same bytes on every rerun, so the
    browser's download links stay valid while the page reruns)."""
    made = state.setdefault("files", {})
    key = (settings, alloc is not None)
    if key not in made:
        result = solve(settings)
        out = {
            "villages.csv": views.villages_csv(result),
            "villages.gpkg": views.villages_gpkg(result),
            "plan.nc": views.netcdf_bytes(result.plan),
            "kpis.csv": views.csv_bytes(views.kpi_table({"plan": result})),
        }
        if alloc is not None:
            out["allocation.nc"] = views.netcdf_bytes(alloc)
        made.clear()  # only the run shown
        made[key] = out
    return made[key]


def describe(settings: tuple) -> str:
    _, sfile, sname, items = settings
    words = {
        "policy.coverage_target": "coverage target {:.0%}",
        "policy.coverage_basis": "of {}",
        "policy.budget_cny": "budget CNY {:,.0f}",
        "policy.affordability_share": "affordable at {:.1%} of income",
        "policy.affordability_basis": "({})",
        "policy.take_up": "take-up {:.0%}",
    }
    parts = [words[k].format(v) for k, v in items if k in words and v is not None]
    return f"{Path(sfile).name} {sname}: " + ", ".join(parts)


def deck(layers: list, bbox: tuple, key: str, height: int = 560) -> None:
    """A map: hillshade, district outlines and names, a scale bar, then ``layers``."""
    shade = hillshade(state["region_dir"])
    bar, label = views.scale_bar(bbox)
    base = [
        pdk.Layer(
            "BitmapLayer", data=None, image=pdk.types.String(shade["image"]), bounds=shade["bounds"]
        ),
        pdk.Layer(
            "PathLayer",
            views.district_outlines(region),
            get_path="path",
            get_color=[60, 60, 60],
            get_width=0,
            width_min_pixels=1.5,
        ),
    ]
    labels = views.district_labels(region)
    top = [
        pdk.Layer(
            "TextLayer",
            labels,
            get_position=["lon", "lat"],
            get_text="name",
            get_size=13,
            get_color=[20, 20, 20],
            character_set=pdk.types.String(views.characters(labels["name"])),
        ),
        pdk.Layer(
            "PathLayer",
            bar,
            get_path="path",
            get_color=[0, 0, 0],
            get_width=0,
            width_min_pixels=4,
        ),
        pdk.Layer("TextLayer", label, get_position=["lon", "lat"], get_text="text", get_size=13),
    ]
    st.pydeck_chart(
        pdk.Deck(
            layers=base + layers + top,
            initial_view_state=pdk.ViewState(**views.view(bbox, height_px=height)),
            map_style=views.OFFLINE_STYLE,
            tooltip={"html": "{tooltip}"},
        ),
        key=key,
        height=height,
    )


def points(df: pd.DataFrame, name: str) -> pdk.Layer:
    return pdk.Layer(
        "ScatterplotLayer",
        df,
        id=name,
        get_position=["lon", "lat"],
        get_fill_color=["r", "g", "b"],
        get_radius="radius_m",
        pickable=True,
        opacity=0.85,
        radius_min_pixels=3,
    )


def money_col(label: str) -> st.column_config.NumberColumn:
    return st.column_config.NumberColumn(label, format="localized")


# ----------------------------------------------------------------------------------- region

with st.sidebar:
    st.header("Region")
    upload = st.file_uploader(
        "Upload a region (.zip of a folder with region.toml)",
        type=["zip"],
        key="upload",
        help="Replaces the bundled region for this session. Limits: 200 MB unpacked, 200 files.",
    )
state.setdefault("region_dir", str(REGION_DIR))
if upload is not None and state.get("upload_name") != upload.name:
    state["upload_name"] = upload.name
    try:
        folder = uploads.extract_region_zip(
            upload.getvalue(), Path(tempfile.mkdtemp(prefix="us-upload-"))
        )
        load_region(str(folder))  # checked before it replaces anything
        state["region_dir"] = str(folder)
        state.pop("shown", None)  # everything shown is replaced by the new region's plan
        state.pop("compare", None)
        state.pop("allocation", None)
    except InputDataError as exc:
        st.sidebar.error(f"Upload rejected, the current region is kept:\n\n{exc}")
try:
    region = load_region(state["region_dir"])
except InputDataError as exc:  # shown to the user, every problem listed
    st.error(f"Could not load the region at {state['region_dir']}:\n\n{exc}")
    st.stop()

# --------------------------------------------------------------------------------- controls

files = [str(p) for p in sorted(SCENARIO_DIR.glob("*.yaml"))]
with st.sidebar:
    st.header("Scenario")
    sfile = st.selectbox("Scenario file", files, format_func=lambda p: Path(p).name, key="sfile")
    sname = st.selectbox("Named scenario", scenario_names(sfile), key="sname")
    base = load((state["region_dir"], sfile, sname, ())).config.policy
    maximise = base.objective == "max_coverage"
    st.caption(
        "Objective: "
        + {
            "min_cost": "least NPV cost meeting the target",
            "min_subsidy": "least subsidy meeting the target",
            "max_coverage": "most coverage within the budget",
        }[base.objective]
    )
    why = "this scenario maximises coverage within its budget, so no target applies"
    target = st.slider(
        "Coverage target",
        0.5,
        1.0,
        float(base.coverage_target or 0.98),
        0.01,
        key=f"target_{sfile}_{sname}",
        disabled=maximise,
        help=why if maximise else "share of the basis below that the plan must cover",
    )
    basis = st.radio(
        "Coverage counts",
        ["population", "villages"],
        index=0 if base.coverage_basis == "population" else 1,
        horizontal=True,
        key=f"basis_{sfile}_{sname}",
        disabled=maximise,
        help=why if maximise else "persons, or administrative villages (the MIIT basis)",
    )
    budget_m = st.number_input(
        "Budget [CNY million, NPV cost]"
        if base.budget_basis == "npv_cost"
        else f"Budget [CNY million, {base.budget_basis}]",
        min_value=0.0,
        value=float((base.budget_cny or 0.0) / 1e6),
        step=5.0,
        key=f"budget_{sfile}_{sname}",
        help="0: no budget"
        + ("" if maximise else " (with a target, a budget can make it infeasible)"),
    )
    afford = st.slider(
        "Affordable: at most this share of monthly income",
        0.005,
        0.05,
        float(base.affordability_share),
        0.005,
        format="%.3f",
        key=f"afford_{sfile}_{sname}",
    )
    afford_basis = st.radio(
        "Income the share applies to",
        ["per_capita", "household"],
        index=0 if base.affordability_basis == "per_capita" else 1,
        format_func=lambda b: {"per_capita": "per person", "household": "per household"}[b],
        horizontal=True,
        key=f"abasis_{sfile}_{sname}",
    )
    take_up = st.slider(
        "Take-up: share of households subscribing",
        0.1,
        1.0,
        float(base.take_up),
        0.05,
        key=f"takeup_{sfile}_{sname}",
    )
    run_clicked = st.button("Run plan", type="primary", key="run")

items: tuple = ()
if not maximise:
    items += (("policy.coverage_target", target), ("policy.coverage_basis", basis))
if budget_m > 0 or maximise:
    items += (("policy.budget_cny", budget_m * 1e6 if budget_m > 0 else base.budget_cny),)
items += (
    ("policy.affordability_share", afford),
    ("policy.affordability_basis", afford_basis),
    ("policy.take_up", take_up),
)
current = (state["region_dir"], sfile, sname, items)

st.title("Universal-service planner")
st.caption(
    f"{region.name}: {views.count(len(region.villages))} villages, "
    f"{len(region.districts)} districts, {views.count(region.villages['population'].sum())} people"
)
notes = views.provenance_notice(region)
if notes:
    with st.expander("Derived and synthetic data in this region", expanded=False):
        st.markdown("\n".join(f"- {n}" for n in notes))

notices = st.container()  # a fixed slot: what it holds varies, what follows keeps its place
if run_clicked or "shown" not in state:
    try:
        solve(current)
        state["shown"] = current
    except (InputDataError, ScenarioError) as exc:
        notices.error(f"These settings cannot be planned:\n\n{exc}")
        if "shown" not in state:
            st.stop()
shown = state["shown"]
result = solve(shown)
stale = shown != current
if stale:
    style_slot.markdown(STALE_STYLE, unsafe_allow_html=True)
    notices.warning(
        f"Results are for: {describe(shown)}. The sidebar now says: {describe(current)}. "
        "Press Run plan to solve it."
    )
basis_words = views.money_basis(result)
bbox = hillshade(state["region_dir"])["bbox"]

box = st.container(key="results")
with box:
    a = result.plan.attrs
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("Coverage", views.share(a["coverage_share"]), help=f"share of {a['coverage_basis']}")
    c2.metric("NPV cost", views.cny(a["total_npv_cost"], "M"), help=basis_words)
    c3.metric("Subsidy needed", views.cny(a["total_subsidy"], "M"), help=basis_words)
    c4.metric("Plan", str(a["status"]), help=views.status_words(a))
    st.caption(f"Money: {basis_words}. Plan: {views.status_words(a)}.")
    infeasible_slot = st.container()
    if a.get("infeasible_reason"):
        infeasible_slot.error(f"Infeasible: {a['infeasible_reason']}")

    tabs = st.tabs(
        ["Service today", "Plan", "Districts", "Allocation", "Scenarios", "Downloads"], key="tabs"
    )
    with tabs[0]:
        st.markdown(plot.legend(plot.SERVICE_COLORS), unsafe_allow_html=True)
        deck([points(views.village_points(result, "existing_service"), "today")], bbox, "map_today")

    with tabs[1]:
        st.markdown(plot.legend(plot.TECH_COLORS), unsafe_allow_html=True)
        show = st.multiselect(
            "Layers",
            ["villages by technology", "fiber network", "built sites", "viewshed of a site"],
            default=["villages by technology", "fiber network"],
            key="plan_layers",
        )
        layers = []
        sites = views.built_sites(result)
        if "viewshed of a site" in show and len(sites):
            sid = st.selectbox("Site", sites["site_id"], key="viewshed_site")
            vs = views.site_viewshed(result, sid)
            layers.append(
                pdk.Layer(
                    "BitmapLayer",
                    data=None,
                    image=pdk.types.String(vs["image"]),
                    bounds=vs["bounds"],
                )
            )
            st.caption(f"Site {sid} sees {vs['visible_km2']:,.0f} km2 within the radio range.")
        if "fiber network" in show and result.fiber is not None:
            lines = plot.line_frame(result.fiber.lines)
            layers.append(
                pdk.Layer(
                    "PathLayer",
                    lines,
                    get_path="path",
                    get_color=[31, 119, 180],
                    get_width=0,
                    width_min_pixels=2,
                )
            )
        if "villages by technology" in show:
            layers.append(points(views.village_points(result), "plan"))
        if "built sites" in show and len(sites):
            sites["r"], sites["g"], sites["b"], sites["radius_m"] = 0, 0, 0, 500
            layers.append(points(sites, "sites"))
        deck(layers, bbox, "map_plan")
        if result.fiber is not None and result.fiber.steiner is not None:
            st.caption(
                f"Fiber: {a['fiber_villages']:,} villages share "
                f"{result.fiber.shared_trench_m / 1000:,.0f} km of trench (flat-equivalent), "
                f"{result.fiber.saving_share:.0%} less than separate routes."
            )
        summary = report.summary(result).round(0)
        st.dataframe(
            summary, key="summary_table", column_config={c: money_col(c) for c in summary.columns}
        )

    alloc = state.get("allocation", {}).get(shown)
    with tabs[3]:
        st.write(
            "Who builds and who pays: each district's obligation costed for every operator "
            "with its own network, then allocated under each regime."
        )
        if alloc is None and st.button("Allocate among operators", key="allocate"):
            with st.spinner("Costing every district for every operator (about a minute)..."):
                alloc, _ = runcache.cached_allocation(load(shown), shown[0], region=region)
            state.setdefault("allocation", {})[shown] = alloc
        if alloc is not None:
            regimes = list(alloc["regime"].values.astype(str))
            regime = st.selectbox("Regime", regimes, key="regime")
            r = alloc.sel(regime=regime)
            if note := views.regime_note(alloc, regime):
                st.warning(note)
            m1, m2, m3 = st.columns(3)
            m1.metric("Total subsidy", views.cny(float(r["total_subsidy"]), "M"))
            m2.metric(
                "Cost of fairness",
                views.cny(float(r["cost_of_fairness"]), "M"),
                help="total cost above the least-cost assignment",
            )
            m3.metric("Levy rate", views.share(float(r["levy_rate"])), help="share of revenue")
            polys = views.allocation_districts(region, alloc, regime)
            deck(
                [
                    pdk.Layer(
                        "PolygonLayer",
                        polys,
                        get_polygon="polygon",
                        get_fill_color=["r", "g", "b", 110],
                        get_line_color=[40, 40, 40],
                        pickable=True,
                    )
                ],
                bbox,
                "map_alloc",
            )
            st.markdown(plot.legend(views.OPERATOR_COLORS), unsafe_allow_html=True)
            burden = views.burden_table(alloc, regime)
            st.bar_chart(
                burden[["burden share", "reference share"]],
                stack=False,
                x_label="operator",
                y_label="share of the total",
            )
            st.dataframe(
                burden,
                key="burden_table",
                column_config={"net burden [CNY]": money_col("net burden [CNY]")},
            )

    with tabs[2]:
        regime = state.get("regime") if alloc is not None else None
        table = views.district_table(result, alloc, regime)
        st.bar_chart(
            views.chart_by_status(table),
            x_label="district",
            y_label="people",
            color=views.STATUS_COLORS,
        )
        st.subheader("One district on its own")
        names = region.districts.set_index("district_id")["name"].astype(str)
        dcol, tcol = st.columns(2)
        one = dcol.selectbox(
            "District", list(names.index), format_func=lambda d: names[d], key="one_district"
        )
        one_target = tcol.slider(
            "Its coverage target", 0.5, 1.0, float(target), 0.01, key="one_target"
        )
        if st.button("Plan this district alone (its own sites and routes)", key="one_btn"):
            with st.spinner(f"Costing and planning {names[one]}..."):
                sc_one = load(shown)
                alone = views.district_alone(result, sc_one, one, one_target)
            state["one"] = (shown, one, one_target, alone)
        if state.get("one") and state["one"][0] == shown:
            _, d_id, d_target, alone = state["one"]
            st.dataframe(alone, key="one_table")
        st.dataframe(
            table,
            key="district_table",
            column_config={c: money_col(c) for c in table.columns if table[c].dtype.kind in "fi"},
        )

    with tabs[4]:
        choices = ["sidebar settings"] + [
            f"{Path(f).name}:{n}" for f in files for n in scenario_names(f)
        ]
        ca, cb = st.columns(2)
        pick_a = ca.selectbox("A", choices, index=0, key="ab_a")
        pick_b = cb.selectbox("B", choices, index=min(1, len(choices) - 1), key="ab_b")

        def settings_of(pick: str) -> tuple:
            if pick == "sidebar settings":
                return current
            fname, n = pick.split(":", 1)
            return (state["region_dir"], str(SCENARIO_DIR / fname), n, ())

        pair = (settings_of(pick_a), settings_of(pick_b))
        if st.button("Compare", key="compare_btn"):
            state["compare"] = pair
            for s in pair:
                solve(s)
        if "compare" in state:
            sa, sb = state["compare"]
            if state["compare"] != pair:
                st.info("The comparison below is for the A and B chosen before; press Compare.")
            ra, rb = solve(sa), solve(sb)
            kpis = views.kpi_table({"A": ra, "B": rb})
            k1, k2, k3 = st.columns(3)
            for col, (label, row, fmt, colour) in zip(
                (k1, k2, k3),
                (
                    (
                        "Coverage of population",
                        "coverage, share of population",
                        views.share,
                        "normal",
                    ),
                    ("NPV cost", "NPV cost [CNY]", lambda x: views.cny(x, "M"), "inverse"),
                    ("Subsidy", "NPV subsidy [CNY]", lambda x: views.cny(x, "M"), "inverse"),
                ),
                strict=True,
            ):
                col.metric(
                    f"{label}, B",
                    fmt(kpis.loc[row, "B"]),
                    delta=fmt(kpis.loc[row, "difference"]).replace("CNY ", ""),
                    delta_color=colour,
                    help=f"A: {fmt(kpis.loc[row, 'A'])}",
                )
            st.dataframe(views.formatted_kpis(kpis), key="kpi_table")
            changes = views.technology_changes(ra, rb)
            st.caption(f"{len(changes):,} villages change technology from A to B.")
            changes["r"], changes["g"], changes["b"], changes["radius_m"] = 200, 30, 160, 700
            deck([points(changes, "changes")], bbox, "map_changes")

        st.subheader("Cost of coverage")
        curve = state.get("curve", {}).get(shown)
        if curve is None and st.button(
            "Compute the least-cost curve (90% to 100%, own fiber routes)", key="curve_btn"
        ):
            with st.spinner("One plan per target..."):
                curve, _ = runcache.cached_sweep(load(shown), shown[0], views.CURVE_TARGETS)
            state.setdefault("curve", {})[shown] = curve
        if curve is not None:
            st.scatter_chart(
                views.curve_points(curve, result),
                x="coverage of population",
                y="NPV cost [CNY million]",
                color="series",
            )

    with tabs[5]:
        st.download_button(
            "Villages (CSV)",
            download_files(shown)["villages.csv"],
            "villages.csv",
            "text/csv",
            key="dl_csv",
        )
        st.download_button(
            "Villages (GeoPackage)",
            download_files(shown)["villages.gpkg"],
            "villages.gpkg",
            "application/geopackage+sqlite3",
            key="dl_gpkg",
        )
        st.download_button(
            "Plan (netCDF)",
            download_files(shown)["plan.nc"],
            "plan.nc",
            "application/x-netcdf",
            key="dl_plan",
        )
        st.download_button(
            "KPI table (CSV)",
            download_files(shown)["kpis.csv"],
            "kpis.csv",
            "text/csv",
            key="dl_kpis",
        )
        if alloc is not None:
            st.download_button(
                "Allocation (netCDF)",
                download_files(shown, alloc)["allocation.nc"],
                "allocation.nc",
                "application/x-netcdf",
                key="dl_alloc",
            )
        else:
            st.caption("Allocation (netCDF): run the allocation on the Allocation tab first.")
