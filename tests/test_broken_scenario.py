"""Broken scenario files, catalogs and radio settings: a bounded, clear error, never a traceback.

Cases of issue 16 in the format of ``tests/test_broken_inputs.py`` (a ``Case`` per broken input,
the substrings its message must hold): YAML alias bombs and other unbounded expansions, files too
large to parse, duplicate YAML keys, catalog technologies the model does not know, numbers that
overflow in the catalog, and radio settings beyond physical sense. Every message must also stay
short (``MAX_MESSAGE_CHARS``). The literal files are listed in ``tests/data/broken/README.md``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.test_broken_inputs import BROKEN, CATALOG_TEXT, Case, _check_message, _params
from universal_service import catalog, costs, errors, io, scenarios
from universal_service.cli import app
from universal_service.errors import InputDataError, ScenarioError
from universal_service.schema import PLAUSIBLE, TYPICAL, RadioConfig

#: No message of these cases may be longer [characters] (the alias bomb's was hundreds of MB).
MAX_MESSAGE_CHARS = 5_000


def _yaml(text: str) -> Callable[[Path, Path], object]:
    def make(tmp: Path, region: Path) -> object:
        path = tmp / "scenario.yaml"
        path.write_text(text, encoding="utf-8")
        return scenarios.load_scenario(path)

    return make


def _literal(name: str) -> Callable[[Path, Path], object]:
    return lambda tmp, region: scenarios.load_scenario(BROKEN / name)


def _radio(**values: object) -> Callable[[Path, Path], object]:
    return _yaml("radio:\n" + "".join(f"  {k}: {v}\n" for k, v in values.items()))


def _nested_lists(depth: int) -> str:
    return "name: " + "[" * depth + "]" * depth + "\n"


def _many_aliases(n: int) -> str:
    return "a: &a 1\nb: [" + ", ".join(["*a"] * n) + "]\n"


def _too_large(tmp: Path, region: Path) -> object:
    path = tmp / "huge.yaml"
    path.write_text("# padding\n" * (scenarios.MAX_SCENARIO_BYTES // 10 + 1), encoding="utf-8")
    return scenarios.load_scenario(path)


SCENARIO_CASES: dict[str, Case] = {
    "scenario_alias_bomb": Case(
        _literal("scenario_alias_bomb.yaml"),
        ("scenario_alias_bomb.yaml", "expand to more than 100,000 entries", "write the values out"),
        ScenarioError,
    ),
    "scenario_too_many_aliases": Case(
        _yaml(_many_aliases(scenarios.MAX_YAML_ALIASES + 1)),
        ("scenario.yaml", "more than 200 YAML aliases", "line 2", "write the values out"),
        ScenarioError,
    ),
    "scenario_recursive_alias": Case(
        _yaml("name: &a [*a]\n"),
        ("scenario.yaml", "recursive alias", "line 1"),
        ScenarioError,
    ),
    "scenario_nested_too_deeply": Case(
        _yaml(_nested_lists(5_000)),
        ("scenario.yaml", "nested too deeply"),
        ScenarioError,
    ),
    "scenario_too_large": Case(
        _too_large,
        ("huge.yaml", "1,000,010 bytes", "at most 1,000,000 bytes", "MAX_SCENARIO_BYTES"),
        ScenarioError,
    ),
    "scenario_is_a_folder": Case(
        lambda tmp, region: scenarios.load_scenario(tmp),
        ("is a folder, not a scenario file", "name the YAML file in it"),
        ScenarioError,
    ),
    "scenario_duplicate_section": Case(
        _literal("scenario_duplicate_key.yaml"),
        (
            "scenario_duplicate_key.yaml",
            "key 'policy' appears twice (lines 3 and 10)",
            "merge them into one",
        ),
        ScenarioError,
    ),
    "scenario_duplicate_inner_key": Case(
        _yaml("policy:\n  take_up: 0.3\n  take_up: 0.4\n"),
        ("scenario.yaml", "key 'policy.take_up' appears twice (lines 2 and 3)"),
        ScenarioError,
    ),
    "scenario_huge_value_in_message": Case(
        _yaml("name: [" + ", ".join(["x" * 1_000] * 200) + "]\n"),
        ("scenario.yaml", "'name'", "valid string", "..."),
        ScenarioError,
    ),
    "scenario_many_unknown_keys": Case(
        _yaml("".join(f"key{i}: 1\n" for i in range(100))),
        ("scenario.yaml", "unknown key 'key0'", "... and 70 more"),
        ScenarioError,
    ),
    "radio_max_range_absurd": Case(
        _radio(max_range_m="1.0e7"),
        ("scenario.yaml", "'radio.max_range_m'", "1e+07 m", "plausible range 100 to 100000 m"),
        ScenarioError,
    ),
    "radio_max_range_infinite": Case(
        _radio(max_range_m=".inf"),
        ("'radio.max_range_m'", "inf m", "plausible range"),
        ScenarioError,
    ),
    "radio_site_height_10_km": Case(
        _radio(site_height_m=10_000),
        ("'radio.site_height_m'", "10000 m", "plausible range 1 to 300 m", "masts"),
        ScenarioError,
    ),
    "radio_negative_village_height": Case(
        _radio(village_height_m=-6),
        ("'radio.village_height_m'", "-6 m", "plausible range 0.5 to 100 m"),
        ScenarioError,
    ),
    "radio_negative_k_factor": Case(
        _radio(k_factor=-1.33),
        ("'radio.k_factor'", "-1.33", "plausible range 0.3 to 10", "ITU-R P.530"),
        ScenarioError,
    ),
    "radio_absurd_power": Case(
        _radio(tx_power_dbm=120),
        ("'radio.tx_power_dbm'", "120 dBm", "plausible range 0 to 70 dBm"),
        ScenarioError,
    ),
    "radio_hilltops_absurd": Case(
        _radio(hilltops=10**9),
        ("'radio.hilltops'", "plausible range 0 to 10000 sites"),
        ScenarioError,
    ),
    "solve_infinite_time_limit": Case(
        _yaml("solve:\n  time_limit_s: .inf\n"),
        ("'solve.time_limit_s'", "less than or equal to 604800"),
        ScenarioError,
    ),
    "solve_seed_beyond_32_bits": Case(
        _yaml("solve:\n  seed: 99999999999\n"),
        ("'solve.seed'", "less than or equal to 2147483647"),
        ScenarioError,
    ),
}


@pytest.mark.parametrize("name", _params(SCENARIO_CASES))
def test_broken_scenario_file(name, tmp_path, synth_region_dir):
    case = SCENARIO_CASES[name]
    with pytest.raises(case.error) as ei:
        case.make(tmp_path, synth_region_dir)
    _check_message(ei.value, case, name)
    assert len(str(ei.value)) < MAX_MESSAGE_CHARS, f"{name}: {len(str(ei.value))} characters"


# ----------------------------------------------------------------------------------- catalog cases


def _catalog(old: str, new: str, name: str = "technologies.toml") -> Callable[[Path, Path], object]:
    def make(tmp: Path, region: Path) -> object:
        assert old in CATALOG_TEXT, old
        path = tmp / name
        path.write_text(CATALOG_TEXT.replace(old, new, 1), encoding="utf-8")
        return catalog.load_catalog(path)

    return make


def _through_costs(make: Callable[[Path, Path], object]) -> Callable[[Path, Path], object]:
    """Load the catalog and cost the synthetic region with it: the error must come from the
    catalog, not later from the options table."""

    def run(tmp: Path, region: Path) -> object:
        return costs.build_options(io.load_region(region), catalog=make(tmp, region))

    return run


def _csv_catalog(tmp: Path, region: Path) -> object:
    techs = catalog.load_catalog().technologies
    lines = ["technology,capex_cny,quality"]
    lines += [f"{t},{'1e400' if t == 'lte' else 1.0},3" for t in techs]
    path = tmp / "technologies.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return catalog.load_catalog(path)


def _catalog_too_large(tmp: Path, region: Path) -> object:
    path = tmp / "technologies.toml"
    path.write_text(CATALOG_TEXT + "#" * catalog.MAX_CATALOG_BYTES, encoding="utf-8")
    return catalog.load_catalog(path)


FIBER_CAPEX = "capex_cny_per_km = 60000.0"

CATALOG_CASES: dict[str, Case] = {
    "catalog_unknown_technology": Case(
        _catalog(
            "[technology.satellite]", "[technology.5g]\nquality = 3\n\n[technology.satellite]"
        ),
        (
            "technologies.toml",
            "unknown technology ['5g']",
            "the model knows ['fiber', 'microwave', 'lte', 'satellite']",
            "Rename the table or remove it",
        ),
    ),
    "catalog_overflow_1e400": Case(
        _through_costs(_catalog(FIBER_CAPEX, "capex_cny_per_km = 1e400")),
        ("technologies.toml", "technology 'fiber'", "capex_cny_per_km", "finite", "1e400"),
    ),
    "catalog_inf": Case(
        _catalog(FIBER_CAPEX, "capex_cny_per_km = inf"),
        ("technologies.toml", "technology 'fiber'", "capex_cny_per_km must be a finite number"),
    ),
    "catalog_absurd_magnitude": Case(
        _through_costs(_catalog(FIBER_CAPEX, "capex_cny_per_km = 1e300")),
        (
            "technologies.toml",
            "technology 'fiber'",
            "capex_cny_per_km",
            "plausible range 0 to 1e+12",
        ),
    ),
    "catalog_csv_overflow": Case(
        _csv_catalog,
        ("technologies.csv", "technology 'lte'", "capex_cny must be a finite number"),
    ),
    "catalog_meta_tariff_overflow": Case(
        _catalog("list_tariff_cny_per_month = 50.0", "list_tariff_cny_per_month = 5e400"),
        ("technologies.toml", "[meta] list_tariff_cny_per_month", "finite"),
    ),
    "catalog_too_large": Case(
        _catalog_too_large,
        ("technologies.toml", "bytes", "at most 1,000,000 bytes", "MAX_CATALOG_BYTES"),
    ),
    "catalog_is_a_folder": Case(
        lambda tmp, region: catalog.load_catalog(tmp),
        ("is a folder", "technologies.toml"),
    ),
}


@pytest.mark.parametrize("name", _params(CATALOG_CASES))
def test_broken_catalog_file(name, tmp_path, synth_region_dir):
    case = CATALOG_CASES[name]
    with pytest.raises(case.error) as ei:
        case.make(tmp_path, synth_region_dir)
    _check_message(ei.value, case, name)
    assert "options" not in str(ei.value)  # reported against the catalog, not the options table
    assert len(str(ei.value)) < MAX_MESSAGE_CHARS


ALL_CASES = {**SCENARIO_CASES, **CATALOG_CASES}


def test_every_case_is_listed_in_the_readme():
    readme = (BROKEN / "README.md").read_text(encoding="utf-8")
    unlisted = [name for name in ALL_CASES if f"`{name}`" not in readme]
    assert not unlisted, f"add these cases to tests/data/broken/README.md: {unlisted}"


# ------------------------------------------------------------------------- through the CLI: exit 2


@pytest.mark.parametrize(
    "text, where",
    [
        ((BROKEN / "scenario_alias_bomb.yaml").read_text(encoding="utf-8"), "expand to more"),
        ((BROKEN / "scenario_duplicate_key.yaml").read_text(encoding="utf-8"), "key 'policy'"),
        ("radio:\n  max_range_m: 1.0e7\n", "'radio.max_range_m'"),
        ("catalog: technologies.toml\n", "unknown technology ['5g']"),
    ],
    ids=["alias_bomb", "duplicate_key", "radio_range", "catalog_unknown_technology"],
)
def test_cli_exits_2_without_traceback(text, where, tmp_path, synth_region_dir):
    (tmp_path / "technologies.toml").write_text(
        CATALOG_TEXT.replace("[technology.satellite]", "[technology.5g]\n[technology.satellite]"),
        encoding="utf-8",
    )
    (tmp_path / "s.yaml").write_text(text, encoding="utf-8")
    args = ["plan", str(synth_region_dir), "--scenario", str(tmp_path / "s.yaml")]
    res = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "out")])
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output
    assert where in res.output
    assert len(res.output) < MAX_MESSAGE_CHARS


# ------------------------------------------------------------------- bounded messages, unit level


def test_many_problems_are_listed_up_to_the_bound():
    exc = InputDataError([f"villages.gpkg, row {i}: population must be >= 0" for i in range(1000)])
    msg = str(exc)
    assert msg.startswith("1000 problems in the input data:")
    assert "row 29:" in msg and "row 30:" not in msg
    assert msg.endswith(f"... and {1000 - errors.MAX_PROBLEMS} more")
    assert len(exc.problems) == 1000  # callers still get every problem


def test_a_long_problem_is_clipped_saying_how_much():
    exc = ScenarioError("s.yaml: " + "x" * 1_000_000)
    assert len(str(exc)) < errors.MAX_PROBLEM_CHARS + 100
    assert str(exc).endswith(f"({1_000_008 - errors.MAX_PROBLEM_CHARS} more characters)")


def test_short_repr_of_an_alias_bomb_is_bounded():
    bomb: object = ["lol"]
    for _ in range(30):  # 10^30 leaves if printed in full
        bomb = [bomb] * 10
    text = errors.short_repr(bomb)
    assert text.startswith("[[[") and len(text) <= errors.MAX_REPR_CHARS + 40


# --------------------------------------------------------------------------- radio plausibility


def test_every_radio_limit_is_enforced_at_both_ends():
    for quantity, limit in PLAUSIBLE.items():
        if not quantity.startswith("radio."):
            continue
        key = quantity.split(".", 1)[1]
        default = RadioConfig.model_fields[key].default
        assert limit.low <= default <= limit.high, quantity  # the defaults are plausible
        below = limit.low - max(1, abs(limit.low))
        above = limit.high + max(1, abs(limit.high))
        for bad in (below, above):
            with pytest.raises(ValueError, match="plausible range"):
                RadioConfig(**{key: bad})


def test_an_odd_but_possible_radio_value_is_a_warning(tmp_path, caplog):
    path = tmp_path / "s.yaml"
    path.write_text("radio:\n  max_range_m: 50000\n  site_height_m: 200\n", encoding="utf-8")
    with caplog.at_level(logging.WARNING):
        sc = scenarios.load_scenario(path)
    assert sc.config.radio.max_range_m == 50_000
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(
        "radio.max_range_m = 50000 m is unusual (typically 1000 to 35000 m)" in w for w in warned
    ), warned
    assert any("radio.site_height_m = 200 m is unusual" in w for w in warned), warned
    assert set(TYPICAL) <= set(PLAUSIBLE)


def test_the_baseline_loads_without_a_radio_warning(caplog):
    with caplog.at_level(logging.WARNING):
        scenarios.load_scenario()
    assert not [r for r in caplog.records if "unusual" in r.getMessage()]


def test_yaml_merge_keys_are_not_duplicates(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(
        "overrides:\n  a: &a {policy: {take_up: 0.3}}\n  b:\n    <<: *a\n    radio: {hilltops: 5}\n"
        "scenarios:\n  both: [b]\n",
        encoding="utf-8",
    )
    sc = scenarios.load_scenario(path, scenario="both")
    assert sc.config.policy.take_up == 0.3 and sc.config.radio.hilltops == 5
