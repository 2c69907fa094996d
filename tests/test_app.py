"""Dashboard tests: Streamlit's AppTest on a synthetic region (the browser test is in
tests/test_app_browser.py)."""

from __future__ import annotations

import io
import sys
import zipfile
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from universal_service import runcache, synthetic

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "app.py"
STALE = "Results are for"


@pytest.fixture
def app_env(synth_region_dir, monkeypatch, tmp_path):
    monkeypatch.setenv("UNIVERSAL_SERVICE_REGION", str(synth_region_dir))
    monkeypatch.setenv(runcache.CACHE_ENV, str(tmp_path / "cache"))
    # AppTest runs app.py as sys.modules["__main__"] and leaves it there: later spawned
    # processes (a Dask LocalCluster's workers) would then re-run the whole app on start-up
    monkeypatch.setitem(sys.modules, "__main__", sys.modules["__main__"])
    return synth_region_dir


def started() -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=300)
    at.run()
    assert not at.exception, at.exception
    return at


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def widget(items, label: str):
    return next(w for w in items if w.label.startswith(label))


def warnings(at: AppTest) -> str:
    return " ".join(w.value for w in at.warning)


def zipped(folder: Path) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for p in sorted(folder.rglob("*")):
            z.write(p, Path(folder.name) / p.relative_to(folder))
    return buf.getvalue()


def test_app_runs_and_shows_every_tab(app_env):
    at = started()
    assert "Universal-service planner" in at.title[0].value
    m = metrics(at)
    assert {"Coverage", "NPV cost", "Subsidy needed", "Plan"} <= set(m)
    assert m["NPV cost"].startswith("CNY ") and m["NPV cost"].endswith(" M")
    assert m["Plan"] in {"optimal", "feasible"}
    assert float(m["Coverage"].rstrip("%")) >= 98.0 - 0.05
    labels = [t.label for t in at.tabs]
    assert labels == ["Service today", "Plan", "Districts", "Allocation", "Scenarios", "Downloads"]
    assert STALE not in warnings(at)
    assert {b.label for b in at.get("download_button")} >= {
        "Villages (CSV)",
        "Villages (GeoPackage)",
        "Plan (netCDF)",
        "KPI table (CSV)",
    }
    districts = next(d for d in at.dataframe if "villages left unserved" in d.value.columns)
    assert set(districts.value.index) == {"District 1", "District 2"}  # names, not codes


def test_moving_a_control_flags_the_results_stale_until_run(app_env):
    at = started()
    before = metrics(at)
    widget(at.slider, "Coverage target").set_value(0.6)
    at.run()
    assert STALE in warnings(at)  # the old plan stays, flagged
    assert metrics(at) == before
    at.button(key="run").click()
    at.run()
    assert not at.exception, at.exception
    assert STALE not in warnings(at)
    assert metrics(at)["NPV cost"] != before["NPV cost"]


@pytest.mark.parametrize(
    ("kind", "label", "value"),
    [
        ("slider", "Coverage target", 0.7),
        ("radio", "Coverage counts", "villages"),
        ("number_input", "Budget", 0.05),
        ("slider", "Affordable", 0.005),
        ("radio", "Income the share applies to", "household"),
        ("slider", "Take-up", 0.9),
    ],
)
def test_each_control_changes_what_is_rendered(app_env, kind, label, value):
    at = started()
    before = (metrics(at), [e.value for e in at.error])
    widget(getattr(at, kind), label).set_value(value)
    at.button(key="run").click()
    at.run()
    assert not at.exception, at.exception
    after = (metrics(at), [e.value for e in at.error])
    assert after != before, f"{label} = {value} changed nothing on the page"


def test_an_upload_replaces_everything_shown(app_env, tmp_path):
    other = synthetic.write_region(tmp_path / "other", n_villages=25, seed=3)
    at = started()
    at.file_uploader[0].set_value(("other.zip", zipped(other), "application/zip"))
    at.run()
    assert not at.exception, at.exception
    assert "25 villages" in at.caption[0].value
    assert STALE not in warnings(at)
    villages = next(d for d in at.dataframe if "villages left unserved" in d.value.columns)
    counted = villages.value[[c for c in villages.value if c.startswith("villages ")]]
    assert int(counted.to_numpy().sum()) == 25  # the plan shown is the new region's


def test_a_broken_upload_leaves_the_app_working(app_env):
    at = started()
    before = metrics(at)
    at.file_uploader[0].set_value(("broken.zip", b"this is not a zip file", "application/zip"))
    at.run()
    assert not at.exception, at.exception
    assert any("Upload rejected" in e.value for e in at.sidebar.error)
    assert metrics(at) == before and "40 villages" in at.caption[0].value
    widget(at.slider, "Coverage target").set_value(0.8)
    at.button(key="run").click()
    at.run()
    assert not at.exception and metrics(at)["NPV cost"] != before["NPV cost"]


def test_ab_comparison_and_it_survives_other_widgets(app_env):
    at = started()
    at.selectbox(key="ab_b").set_value("baseline.yaml:austerity")
    at.button(key="compare_btn").click()
    at.run()
    assert not at.exception, at.exception
    kpis = next(d for d in at.dataframe if "difference" in d.value.columns).value
    row = kpis.loc["NPV cost [CNY]"]  # text with units (test_views checks the numbers)

    def yuan(text: str) -> float:
        return float(text.removeprefix("CNY ").replace(",", ""))

    assert (
        row["A"].startswith("CNY ")
        and abs(yuan(row["difference"]) - (yuan(row["B"]) - yuan(row["A"]))) <= 1.0
    )
    assert kpis.loc["coverage, share of population", "A"].endswith("%")
    assert {"Coverage of population, B", "NPV cost, B", "Subsidy, B"} <= set(metrics(at))
    widget(at.slider, "Take-up").set_value(0.5)  # another widget moves: the comparison stays
    at.run()
    assert any("difference" in d.value.columns for d in at.dataframe)


def test_the_coverage_target_is_disabled_under_a_max_coverage_scenario(app_env):
    at = started()
    at.selectbox(key="sname").set_value("austerity")
    at.run()
    target = widget(at.slider, "Coverage target")
    assert target.disabled and "maximises coverage" in target.help
    assert not widget(at.number_input, "Budget").disabled


def test_allocation_tab_assigns_districts_to_operators(app_env):
    at = started()
    at.button(key="allocate").click()
    at.run()
    assert not at.exception, at.exception
    regimes = at.selectbox(key="regime")
    assert set(regimes.options) >= {"lots", "fund"}
    # two districts cannot be lotted within the tolerance: the page says so and why
    assert any("lots: infeasible" in w.value for w in at.warning)
    regimes.set_value("fund")
    at.run()
    burden = next(d for d in at.dataframe if "reference share" in d.value.columns).value
    assert burden["burden share"].sum() == pytest.approx(1.0, abs=1e-6)
    assert {"Total subsidy", "Cost of fairness", "Levy rate"} <= set(metrics(at))
    districts = next(d for d in at.dataframe if "villages left unserved" in d.value.columns).value
    assert "operator" in districts.columns


def test_one_district_is_replanned_alone(app_env):
    at = started()
    at.button(key="one_btn").click()
    at.run()
    assert not at.exception, at.exception
    table = next(d for d in at.dataframe if "plan status" in d.value.index).value
    assert any(c.startswith("alone, target") for c in table.columns)
