"""Tests for universal_service.scenarios: loading, override merging and clash detection."""

from __future__ import annotations

import pytest

from universal_service import scenarios
from universal_service.errors import ScenarioError


def test_bundled_baseline_loads():
    sc = scenarios.load_scenario()
    assert sc.config.name == "baseline"
    assert sc.config.policy.coverage_target == pytest.approx(0.98)


def test_named_scenario_applies_overrides_in_order():
    sc = scenarios.load_scenario(scenario="universal_broadband")
    assert sc.applied == ["universal", "broadband_only"]
    assert sc.config.policy.coverage_target == 1.0 and sc.config.policy.min_quality == 2
    assert sc.config.name == "universal_broadband"


def test_set_values_apply_last():
    sc = scenarios.load_scenario(set_values=scenarios.parse_set(["policy.coverage_target=0.9"]))
    assert sc.config.policy.coverage_target == 0.9


def test_clashing_overrides_are_an_error():
    with pytest.raises(
        ScenarioError, match="'universal' and 'tight_budget' both set 'policy.coverage_target'"
    ):
        scenarios.load_scenario(overrides=["universal", "tight_budget"])


def test_unknown_key_named(tmp_path):
    p = tmp_path / "s.yaml"
    p.write_text("policy:\n  coverage_targte: 0.9\n")
    with pytest.raises(ScenarioError, match=r"unknown key 'policy.coverage_targte'"):
        scenarios.load_scenario(p)


def test_malformed_yaml(tmp_path):
    p = tmp_path / "s.yaml"
    p.write_text("policy:\n  coverage_target: [0.9\n")
    with pytest.raises(ScenarioError, match="not valid YAML"):
        scenarios.load_scenario(p)


def test_invalid_value_named(tmp_path):
    p = tmp_path / "s.yaml"
    p.write_text("policy:\n  coverage_target: 1.5\n")
    with pytest.raises(ScenarioError, match="'policy.coverage_target': Input should be less"):
        scenarios.load_scenario(p)


def test_unknown_override_name():
    with pytest.raises(ScenarioError, match=r"unknown override \['nope'\]"):
        scenarios.load_scenario(overrides=["nope"])


def test_merge_does_not_mutate_base():
    base = {"policy": {"coverage_target": 0.5}}
    out = scenarios.merge_overrides(base, [("a", {"policy.coverage_target": 0.7})])
    assert base["policy"]["coverage_target"] == 0.5 and out["policy"]["coverage_target"] == 0.7
