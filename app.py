"""Streamlit dashboard: coverage gap, technology plan, operators and scenario A/B comparison.

Run with ``streamlit run app.py`` (or ``universal-service dashboard``). The region is the bundled
one unless ``UNIVERSAL_SERVICE_REGION`` names another folder. This file only wires widgets to
library calls; all computing is in ``universal_service``.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pandas as pd
import pydeck as pdk
import streamlit as st

from universal_service import io, plot, report, scenarios, uploads
from universal_service.errors import InputDataError

st.set_page_config(page_title="Universal-service planner", layout="wide")

REGION_DIR = Path(os.environ.get("UNIVERSAL_SERVICE_REGION", scenarios.DEFAULT_REGION))
SCENARIO_DIR = scenarios.DATA_DIR / "scenarios"


@st.cache_resource(show_spinner="Loading region...")
def load_region(path: str) -> io.Region:
    return io.load_region(path)


@st.cache_resource(show_spinner="Costing options and solving the plan...", max_entries=8)
def run_scenario(
    region_dir: str,
    scenario_file: str,
    name: str | None,
    set_items: tuple[tuple[str, object], ...],
) -> scenarios.ScenarioResult:
    sc = scenarios.load_scenario(scenario_file, scenario=name, set_values=dict(set_items))
    return scenarios.run(sc, region=load_region(region_dir))


def scenario_names(path: Path) -> list[str]:
    import yaml

    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return ["(base)", *sorted((raw.get("scenarios") or {}).keys())]


def point_map(df: pd.DataFrame, tooltip: str, key: str, lines: pd.DataFrame | None = None) -> None:
    layers = []
    if lines is not None and len(lines):
        layers.append(
            pdk.Layer(
                "PathLayer",
                lines,
                get_path="path",
                get_color=[31, 119, 180],
                get_width=2,
                width_units="pixels",
            )
        )
    layers.append(
        pdk.Layer(
            "ScatterplotLayer",
            df,
            get_position=["lon", "lat"],
            get_fill_color=["r", "g", "b"],
            get_radius="radius_m",
            pickable=True,
            opacity=0.8,
        )
    )
    view = pdk.ViewState(
        longitude=float(df["lon"].mean()), latitude=float(df["lat"].mean()), zoom=7.5
    )
    st.pydeck_chart(
        pdk.Deck(
            layers=layers,
            initial_view_state=view,
            map_style=None,
            tooltip={"text": tooltip},
        ),
        key=key,
    )


with st.sidebar:
    upload = st.file_uploader(
        "Region (.zip of a folder with region.toml)",
        type=["zip"],
        key="upload",
        help="Replaces the bundled region for this session. Limits: 200 MB unpacked, 200 files.",
    )
    if upload is not None and st.session_state.get("upload_name") != upload.name:
        try:
            dest = Path(tempfile.mkdtemp(prefix="us-upload-"))
            st.session_state["region_dir"] = str(
                uploads.extract_region_zip(upload.getvalue(), dest)
            )
            st.session_state["upload_name"] = upload.name
        except InputDataError as exc:
            st.error(f"Upload rejected: {exc}")
region_dir = st.session_state.get("region_dir", str(REGION_DIR))

try:
    region = load_region(region_dir)
except InputDataError as exc:  # shown to the user, every problem listed
    st.error(f"Could not load the region at {region_dir}:\n\n{exc}")
    st.stop()

st.title("Universal-service planner")
st.caption(f"{region.name}: {len(region.villages):,} villages, {len(region.districts)} districts")
if region.meta.get("dem_synthetic_detail"):
    st.info(
        "Terrain: real 12 km relief with seeded synthetic detail (no 90 m DEM of this area "
        "is bundled); replace data/qiannan/dem.tif with a real DEM to plan on real terrain."
    )

files = sorted(SCENARIO_DIR.glob("*.yaml"))
with st.sidebar:
    st.header("Scenario")
    sfile = st.selectbox("Scenario file", files, format_func=lambda p: p.name, key="scenario_file")
    sname = st.selectbox("Named scenario", scenario_names(sfile), key="scenario_name")
    base = scenarios.load_scenario(sfile, scenario=None if sname == "(base)" else sname).config
    st.header("Policy")
    target = st.slider(
        "Coverage target (share of population)",
        0.5,
        1.0,
        float(base.policy.coverage_target or 0.98),
        0.01,
        key="coverage_target",
    )
    afford = st.slider(
        "Affordability cap (share of household income)",
        0.005,
        0.05,
        float(base.policy.affordability_share),
        0.005,
        key="affordability",
    )
    min_q = st.selectbox(
        "Minimum quality tier",
        [1, 2, 3],
        index=base.policy.min_quality - 1,
        key="min_quality",
        help="1 satellite, 2 4G/microwave, 3 fiber",
    )
    run_clicked = st.button("Run plan", type="primary", key="run")

set_items: tuple[tuple[str, object], ...] = ()
if base.policy.objective != "max_coverage":
    set_items += (("policy.coverage_target", target),)
set_items += (("policy.affordability_share", afford), ("policy.min_quality", min_q))
args = (region_dir, str(sfile), None if sname == "(base)" else sname, set_items)
if run_clicked or "result_args" not in st.session_state:
    st.session_state["result_args"] = args
result = run_scenario(*st.session_state["result_args"])

tab_gap, tab_plan, tab_ops, tab_ab = st.tabs(
    ["Coverage gap", "Technology plan", "Operators", "A/B comparison"]
)

with tab_gap:
    v = region.villages
    counts = v.groupby("existing_service").agg(
        villages=("village_id", "size"), population=("population", "sum")
    )
    st.subheader("Service today")
    st.markdown(plot.legend(plot.SERVICE_COLORS), unsafe_allow_html=True)
    point_map(
        plot.coverage_gap_frame(v), "{name}: {existing_service}, {population} people", key="gap_map"
    )
    st.dataframe(counts, key="gap_table")

with tab_plan:
    a = result.plan.attrs
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("Coverage", f"{a['coverage_share']:.1%}", help="share of the coverage basis")
    c2.metric("NPV cost [CNY m]", f"{a['total_npv_cost'] / 1e6:,.1f}")
    c3.metric("Subsidy [CNY m]", f"{a['total_subsidy'] / 1e6:,.1f}")
    c4.metric("Solver", f"{a['status']}", help=f"gap {a['gap']:.2e}, {a['solver']}")
    if a.get("infeasible_reason"):
        st.error(f"Infeasible: {a['infeasible_reason']}")
    st.markdown(plot.legend(plot.TECH_COLORS), unsafe_allow_html=True)
    layer = report.village_layer(result)
    fiber_lines = plot.line_frame(result.fiber.lines) if result.fiber is not None else None
    point_map(
        plot.technology_frame(layer),
        "{name}: {technology} ({total_cost_cny} CNY NPV incl. site share)",
        key="tech_map",
        lines=fiber_lines,
    )
    if result.fiber is not None and result.fiber.steiner is not None:
        st.caption(
            f"Fiber: {a['fiber_villages']} villages share "
            f"{result.fiber.shared_trench_m / 1000:,.0f} km of trench (flat-equivalent), "
            f"{result.fiber.saving_share:.0%} less than separate routes."
        )
    st.dataframe(report.summary(result), key="summary_table")

with tab_ops:
    ops = region.operators.copy()
    ops["revenue_share"] = ops["revenue_cny"] / ops["revenue_cny"].sum()
    st.subheader("Operators")
    st.dataframe(ops, key="operators_table")

with tab_ab:
    names = scenario_names(sfile)
    ca, cb = st.columns(2)
    a_name = ca.selectbox("Scenario A", names, index=0, key="ab_a")
    b_name = cb.selectbox("Scenario B", names, index=min(1, len(names) - 1), key="ab_b")
    if st.button("Compare", key="compare"):
        ra = run_scenario(region_dir, str(sfile), None if a_name == "(base)" else a_name, ())
        rb = run_scenario(region_dir, str(sfile), None if b_name == "(base)" else b_name, ())
        cmp = report.compare([ra, rb], names=[f"A: {a_name}", f"B: {b_name}"])
        st.dataframe(
            cmp[["total_cost", "coverage_share", "status"]].to_dataframe(), key="ab_totals"
        )
        by_tech = cmp["population"].sum("district").to_pandas()
        st.bar_chart(by_tech.T)
        st.dataframe(cmp["cost"].sum("technology").to_pandas().T, key="ab_district_cost")
