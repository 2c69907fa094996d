"""Named scenarios: load a scenario file, apply its overrides in order, and run the pipeline.

A scenario file is YAML with the sections of :class:`universal_service.schema.ScenarioConfig`
(``policy``, ``radio``, ``allocation``, ``solve``) plus two optional tables, after Calliope's
``overrides``/``scenarios``::

    overrides:
      tight_budget: {policy: {budget_cny: 2.0e8, objective: max_coverage}}
      fiber_only:   {policy: {min_quality: 3}}
    scenarios:
      austerity: [tight_budget]

Merge order (documented, deterministic): the file's base sections, then the overrides named by
the chosen scenario in list order, then overrides given by name on the command line, then
``--set key=value`` pairs. Two overrides in one application that set the same key are an error
(:class:`~universal_service.errors.ScenarioError` naming the key and both overrides), so the
result never depends on their order. Every overridden key is logged.
"""

from __future__ import annotations

import copy
import dataclasses
import importlib.metadata
import logging
import platform
import time
import tomllib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd
import pydantic
import xarray as xr
import yaml

from . import allocate, costs, fiberplan, io, optimize, outputs, rollout
from .catalog import Catalog, load_catalog
from .errors import ScenarioError, bounded_list, clip, short_repr
from .schema import ScenarioConfig

log = logging.getLogger(__name__)

#: The bundled baseline scenario, package data (``data/scenarios/baseline.yaml`` of a source
#: checkout links to it).
DEFAULT_SCENARIO = resources.files("universal_service") / "data" / "scenarios" / "baseline.yaml"
#: The ``data`` folder of a source checkout: the bundled region and the scenario files. It is not
#: package data (the region is too large), so an installed package has no such folder.
DATA_DIR = Path(__file__).resolve().parents[1] / "data"
#: The bundled region, in a source checkout only.
DEFAULT_REGION = DATA_DIR / "qiannan"


@dataclass
class Scenario:
    """A validated scenario and where it came from."""

    config: ScenarioConfig
    base_dir: Path = Path(".")
    applied: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.config.name

    def region_path(self) -> Path:
        """The region folder: the scenario's ``region`` (relative to its file) or the bundled one.

        Raises
        ------
        ScenarioError
            The scenario names no region and the bundled one is absent (an installed package
            without the source checkout).
        """
        if self.config.region:
            p = Path(self.config.region)
            return p if p.is_absolute() else (self.base_dir / p).resolve()
        if not DEFAULT_REGION.is_dir():
            raise ScenarioError(
                f"scenario '{self.name}' names no region and the bundled region "
                f"({DEFAULT_REGION}) is only in a source checkout of the project: pass a region "
                "path (universal-service plan REGION, or 'region:' in the scenario file)."
            )
        return DEFAULT_REGION

    def catalog_path(self) -> Path | None:
        if self.config.catalog:
            p = Path(self.config.catalog)
            return p if p.is_absolute() else (self.base_dir / p).resolve()
        return None


#: Mappings whose keys are data (district ids, dotted parameter names), set whole by an override.
_LEAF_MAPPINGS = ("district_targets", "uncertainty.parameters", "rollout.milestones")


def _flatten(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping) and v and not key.endswith(_LEAF_MAPPINGS):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


def _set_dotted(d: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    cur = d
    for p in parts[:-1]:
        nxt = cur.setdefault(p, {})
        if not isinstance(nxt, dict):
            raise ScenarioError(f"override key '{key}': '{p}' is a value, not a section")
        cur = nxt
    cur[parts[-1]] = value


def merge_overrides(
    base: Mapping[str, Any], overrides: Sequence[tuple[str, Mapping[str, Any]]]
) -> dict[str, Any]:
    """Apply named overrides to a base configuration.

    Parameters
    ----------
    base : mapping
        The base configuration (nested dict).
    overrides : sequence of (name, mapping)
        Overrides, nested or with dotted keys (``{"policy.budget_cny": 1e8}``).

    Returns
    -------
    dict
        A new configuration; ``base`` is not modified.

    Raises
    ------
    ScenarioError
        Two overrides set the same key.
    """
    out = copy.deepcopy(dict(base))
    seen: dict[str, str] = {}
    for name, ov in overrides:
        for key, value in _flatten(ov).items():
            if key in seen:
                raise ScenarioError(
                    f"overrides '{seen[key]}' and '{name}' both set '{key}'; combine them into "
                    "one override or drop one of them from the scenario."
                )
            seen[key] = name
            log.info("override %s: %s = %r", name, key, value)
            _set_dotted(out, key, value)
    return out


def parse_set(pairs: Iterable[str]) -> dict[str, Any]:
    """Parse ``key=value`` strings (values read as YAML) into a dotted-key mapping."""
    out: dict[str, Any] = {}
    for pair in pairs:
        if "=" not in pair:
            raise ScenarioError(f"--set expects key=value, got {pair!r}")
        k, v = pair.split("=", 1)
        out[k.strip()] = yaml.safe_load(v)
    return out


#: Largest scenario file read [bytes], checked before parsing; the baseline is under 2 kB.
MAX_SCENARIO_BYTES = 1_000_000
#: Most YAML aliases (``*name``) in a scenario, and most entries once they are expanded: a few
#: hundred bytes of nested anchors otherwise expand to billions (a "billion laughs").
MAX_YAML_ALIASES, MAX_YAML_ENTRIES = 200, 100_000


class _BoundedLoader(yaml.SafeLoader):
    """A safe YAML loader that refuses more than :data:`MAX_YAML_ALIASES` aliases."""

    aliases = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            self.aliases += 1
            if self.aliases > MAX_YAML_ALIASES:
                raise ScenarioError(
                    f"more than {MAX_YAML_ALIASES} YAML aliases (*name), the last on line "
                    f"{self.peek_event().start_mark.line + 1}; write the values out instead."
                )
        return super().compose_node(parent, index)


def _yaml_tree_problems(root: yaml.Node) -> list[str]:
    """Duplicate keys (dotted path and lines) of a YAML tree, or its too large expansion."""
    sizes: dict[int, int] = {}

    def size(node: yaml.Node, stack: frozenset[int]) -> int:
        if id(node) in stack:
            raise ScenarioError(
                f"a YAML alias on line {node.start_mark.line + 1} refers to the block holding "
                "it (a recursive alias); write the values out."
            )
        if id(node) not in sizes:
            kids = node.value if isinstance(node, yaml.SequenceNode) else []
            if isinstance(node, yaml.MappingNode):
                kids = [c for pair in node.value for c in pair]
            total = 1 + sum(size(c, stack | {id(node)}) for c in kids)
            sizes[id(node)] = min(total, MAX_YAML_ENTRIES + 1)
        return sizes[id(node)]

    if size(root, frozenset()) > MAX_YAML_ENTRIES:
        return [
            f"its YAML aliases expand to more than {MAX_YAML_ENTRIES:,} entries (nested anchors, "
            "a 'billion laughs'); write the values out instead of nesting aliases."
        ]
    problems: list[str] = []
    todo, walked = [(root, "")], set()
    while todo:
        node, where = todo.pop()
        if id(node) in walked or isinstance(node, yaml.ScalarNode):
            continue
        walked.add(id(node))
        if isinstance(node, yaml.SequenceNode):
            todo += [(child, f"{where}[{i}]") for i, child in enumerate(node.value)]
            continue
        first: dict[str, int] = {}
        for key, value in node.value:
            scalar = isinstance(key, yaml.ScalarNode) and key.tag != "tag:yaml.org,2002:merge"
            name, line = key.value if scalar else "?", key.start_mark.line + 1
            dotted = f"{where}.{name}" if where else str(name)
            if scalar and name in first:
                problems.append(
                    f"key '{dotted}' appears twice (lines {first[name]} and {line}); YAML "
                    "would keep only the last block: merge them into one."
                )
            first.setdefault(name, line)
            todo.append((value, dotted))
    return sorted(problems)


def _read_yaml(path: Path) -> Any:
    """A YAML file, size-checked before parsing, aliases bounded, duplicate keys refused.

    Raises :class:`ScenarioError` naming the file (and the line) when the file is missing, a
    folder, over :data:`MAX_SCENARIO_BYTES`, not UTF-8, not YAML, repeats a key or over-uses
    aliases.
    """
    if path.is_dir():
        raise ScenarioError(f"{path}: is a folder, not a scenario file; name the YAML file in it.")
    if not path.is_file():
        raise ScenarioError(f"{path}: scenario file not found.")
    if (n_bytes := path.stat().st_size) > MAX_SCENARIO_BYTES:
        raise ScenarioError(
            f"{path}: {n_bytes:,} bytes; a scenario file is at most {MAX_SCENARIO_BYTES:,} bytes "
            "(scenarios.MAX_SCENARIO_BYTES). Check that this is the scenario file."
        )
    try:
        loader = _BoundedLoader(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ScenarioError(f"{path}: not UTF-8 text ({exc.reason}); save it as UTF-8.") from exc
    try:
        node = loader.get_single_node()
        if node is not None and (problems := _yaml_tree_problems(node)):
            raise ScenarioError(problems)
        return None if node is None else loader.construct_document(node)
    except ScenarioError as exc:  # the loader's and the tree's problems, named by file here
        raise ScenarioError([f"{path}: {p}" for p in exc.problems]) from None
    except RecursionError:
        raise ScenarioError(f"{path}: nested too deeply (thousands of levels) to read.") from None
    except yaml.YAMLError as exc:
        raise ScenarioError(
            f"{path}: not valid YAML ({exc}). Check indentation and colons."
        ) from exc
    finally:
        loader.dispose()


def load_scenario(
    path: str | Path | None = None,
    *,
    scenario: str | None = None,
    overrides: Sequence[str] = (),
    set_values: Mapping[str, Any] | None = None,
) -> Scenario:
    """Read, merge and validate a scenario file.

    Parameters
    ----------
    path : path-like, optional
        YAML scenario file; the bundled baseline, :data:`DEFAULT_SCENARIO`, by default.
    scenario : str, optional
        A name from the file's ``scenarios`` table (a list of override names).
    overrides : sequence of str
        Further override names from the file's ``overrides`` table, applied after the scenario's.
    set_values : mapping, optional
        Dotted keys and values applied last (``{"policy.coverage_target": 0.9}``).

    Returns
    -------
    Scenario

    Raises
    ------
    ScenarioError
        Malformed YAML, unknown keys or override names, invalid values, or clashing overrides.
    """
    if path is None:
        with resources.as_file(DEFAULT_SCENARIO) as bundled:
            return load_scenario(
                bundled, scenario=scenario, overrides=overrides, set_values=set_values
            )
    path = Path(path)
    raw = _read_yaml(path) or {}
    if not isinstance(raw, dict):
        raise ScenarioError(f"{path}: expected a mapping of sections, got {type(raw).__name__}.")
    table = raw.pop("overrides", {}) or {}
    named = raw.pop("scenarios", {}) or {}
    if not isinstance(table, dict) or not isinstance(named, dict):
        raise ScenarioError(f"{path}: 'overrides' and 'scenarios' must be mappings of names.")
    for oname, ov in table.items():
        if not isinstance(ov, dict):
            raise ScenarioError(
                f"{path}: override '{oname}' must be a mapping of sections and keys (e.g. "
                f"{{policy: {{coverage_target: 1.0}}}}), got {short_repr(ov)}."
            )
    for sname, lst in named.items():
        if not isinstance(lst, list) or not all(isinstance(x, str) for x in lst):
            raise ScenarioError(
                f"{path}: scenario '{sname}' must be a list of override names, e.g. "
                f"[{clip(str(lst), 80)}] rather than {short_repr(lst)}."
            )
    chosen: list[str] = []
    if scenario is not None:
        if scenario not in named and scenario not in table:
            raise ScenarioError(
                f"{path}: unknown scenario '{scenario}'; defined: {sorted(named) or 'none'} "
                f"(overrides: {sorted(table) or 'none'})."
            )
        chosen = list(named.get(scenario, [scenario]))
    chosen += list(overrides)
    missing = [o for o in chosen if o not in table]
    if missing:
        raise ScenarioError(
            f"{path}: unknown override{'s' if len(missing) > 1 else ''} {missing}; defined: "
            f"{sorted(table) or 'none'}."
        )
    pairs: list[tuple[str, Mapping[str, Any]]] = [(o, table[o]) for o in chosen]
    if set_values:
        pairs.append(("--set", dict(set_values)))
    merged = merge_overrides(raw, pairs)
    if scenario is not None:
        merged["name"] = scenario
    try:
        cfg = ScenarioConfig.model_validate(merged)
    except pydantic.ValidationError as exc:
        lines = []
        for e in exc.errors():
            loc = ".".join(str(p) for p in e["loc"])
            if e["type"] == "extra_forbidden":
                lines.append(f"unknown key '{loc}' (remove it or check its spelling)")
            else:
                msg = e["msg"].removeprefix("Value error, ")
                got = "" if e["type"] == "value_error" else f" (got {short_repr(e.get('input'))})"
                lines.append(f"'{loc}': {msg}{got}")
        raise ScenarioError(f"{path}: " + bounded_list(lines)) from exc
    return Scenario(cfg, path.parent.resolve(), chosen)


# --------------------------------------------------------------------------------------------
# Running
# --------------------------------------------------------------------------------------------


@dataclass
class ScenarioResult:
    """What one scenario run produces."""

    scenario: Scenario
    plan: xr.Dataset
    options: costs.Options
    region: io.Region
    timings: dict[str, float] = field(default_factory=dict)
    baseline: xr.Dataset | None = None
    fiber: fiberplan.FiberDesign | None = None
    allocation: xr.Dataset | None = None
    rollout: xr.Dataset | None = None

    @property
    def name(self) -> str:
        return self.scenario.name


def policy_for(config: ScenarioConfig) -> optimize.Policy:
    """The scenario's validated policy and solve sections as an :class:`optimize.Policy`.

    Field by field, in one vocabulary: ``policy.coverage_target``, ``coverage_basis``
    (population | villages), ``district_targets``, ``budget_cny`` (as ``budget`` [CNY]),
    ``budget_basis``, ``objective`` and ``min_quality``; ``solve.solver``, ``time_limit_s``,
    ``mip_gap``, ``threads`` and ``seed``. The values were checked once, by the schema
    (:class:`universal_service.schema.PolicyConfig`); ``optimize.Policy`` checks them again only
    for callers that build it by hand. The other policy fields (affordability, tariff, take-up,
    revenue, discounting, ``existing_counts``) price the options: :func:`costs.build_options`
    reads them, and they reach the optimizer as the options table's money. ``warm_start`` keeps
    the optimizer's default (True): the scenario schema has no key for it.
    """
    p, s = config.policy, config.solve
    return optimize.Policy(
        coverage_target=p.coverage_target,
        coverage_basis=p.coverage_basis,
        district_targets=dict(p.district_targets) or None,
        budget=p.budget_cny,
        budget_basis=p.budget_basis,
        objective=p.objective,
        min_quality=p.min_quality,
        solver=s.solver,
        time_limit_s=s.time_limit_s,
        mip_gap=s.mip_gap,
        threads=s.threads,
        seed=s.seed,
    )


def run(
    scenario: Scenario | str | Path | None = None,
    *,
    region: io.Region | None = None,
    with_baseline: bool = True,
    with_allocation: bool | None = None,
    options: costs.Options | None = None,
    catalog: Catalog | None = None,
    with_rollout: bool = False,
    start: xr.Dataset | None = None,
    progress: Callable[[str], None] | None = None,
) -> ScenarioResult:
    """Run a scenario end to end: load the region, cost the options, optimise, allocate.

    Parameters
    ----------
    scenario : Scenario or path, optional
        A loaded scenario or a YAML path; the bundled baseline by default.
    region : Region, optional
        A region already loaded (skips reading files; the dashboard caches it).
    with_baseline : bool
        Also compute the per-village cheapest-option baseline (no sharing) for comparison.
    with_allocation : bool, optional
        Also allocate the obligation among operators (:func:`universal_service.allocate.
        allocate`, as ``ScenarioResult.allocation``); by default when the scenario file has an
        ``allocation`` section.
    options : costs.Options, optional
        Options already costed for this region with this scenario's ``policy``, ``radio`` and
        catalog (``ScenarioResult.options`` of an earlier run; :func:`universal_service.studies.
        run_many` shares them between scenarios whose costing inputs are equal).
    catalog : Catalog, optional
        A catalog already loaded (or changed, as a Monte Carlo draw does); by default the
        scenario's ``catalog`` file or the bundled one.
    with_rollout : bool
        Also schedule the plan over the years of the scenario's ``rollout`` section
        (:func:`schedule_rollout`, as ``ScenarioResult.rollout``; None when the plan itself has
        no solution).
    start : xarray.Dataset, optional
        A Plan over the same options to start the optimizer from (:func:`optimize.plan`'s
        ``start``; a sweep passes its neighbour's).
    progress : callable, optional
        Called with each stage's name as it ends: ``options``, ``optimize``, ``fiber_design``
        (with shared trenches), ``allocate`` and ``rollout`` (when asked for).

    Returns
    -------
    ScenarioResult
    """
    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario)
    cfg = scenario.config
    t: dict[str, float] = {}
    t0 = time.perf_counter()
    if region is None:
        region = io.load_region(scenario.region_path())
    t["load_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    catalog = catalog or load_catalog(scenario.catalog_path())
    opts = options or costs.build_options(region, cfg.policy, cfg.radio, catalog)
    t["options_s"] = time.perf_counter() - t0
    if progress:
        progress("options")
    t0 = time.perf_counter()
    policy = policy_for(cfg)
    sites = opts.sites[["site_id", "cost", "kind", "capex", "capacity_mbps"]]
    designed = cfg.network.shared_trench and bool((opts.table["technology"] == "fiber").any())
    gap = cfg.network.mip_gap if designed else None
    first = policy if gap is None else dataclasses.replace(policy, mip_gap=float(gap))
    plan = optimize.plan(opts.table, sites, first, start=start)
    t["optimize_s"] = time.perf_counter() - t0
    if progress:
        progress("optimize")
    fiber = None
    if designed and plan.attrs.get("status") in {"optimal", "time_limit"}:
        t0 = time.perf_counter()
        fiber = fiberplan.design(
            plan,
            opts,
            policy,
            catalog,
            iterations=cfg.network.iterations,
            time_limit_s=cfg.network.time_limit_s,
            mip_gap=gap,
        )
        plan = fiber.plan
        t["fiber_design_s"] = time.perf_counter() - t0
        if progress:
            progress("fiber_design")
    base = optimize.baseline(opts.table, sites, policy) if with_baseline else None
    plan = with_site_layer(plan, opts.sites)
    plan.attrs["scenario"] = cfg.name
    plan.attrs["region"] = region.name
    plan.attrs["price_year"] = str(catalog.meta.get("price_year", ""))  # the catalog's money
    if with_allocation is None:
        with_allocation = "allocation" in cfg.model_fields_set
    alloc = None
    if with_allocation:
        t0 = time.perf_counter()
        alloc = allocate.allocate(region, cfg, policy, catalog)
        t["allocate_s"] = time.perf_counter() - t0
        if progress:
            progress("allocate")
    result = ScenarioResult(scenario, plan, opts, region, t, base, fiber, alloc)
    if with_rollout and plan.attrs.get("status") in {"optimal", "feasible", "time_limit"}:
        t0 = time.perf_counter()
        result.rollout = schedule_rollout(result)
        t["rollout_s"] = time.perf_counter() - t0
        if progress:
            progress("rollout")
    return result


def stages(scenario: Scenario, *, with_allocation: bool = False, with_rollout: bool = False) -> int:
    """How many stages :func:`run` reports to its ``progress`` for this scenario."""
    cfg = scenario.config
    return 2 + int(cfg.network.shared_trench) + int(with_allocation) + int(with_rollout)


def schedule_rollout(result: ScenarioResult) -> xr.Dataset:
    """The rollout of a run's plan over the years of its scenario's ``rollout`` section.

    :func:`universal_service.rollout.schedule` with the run's shared trench network, the policy's
    ``coverage_basis`` and ``discount_rate`` and the ``solve`` section's solver settings.
    """
    cfg = result.scenario.config
    return rollout.schedule(
        result.plan,
        cfg.rollout,
        lines=result.fiber.lines if result.fiber is not None else None,
        basis=cfg.policy.coverage_basis,
        rate=cfg.policy.discount_rate,
        solver=cfg.solve.solver,
        threads=cfg.solve.threads,
        seed=cfg.solve.seed,
    )


def input_hashes(region_dir: str | Path, catalog: str | Path | None = None) -> dict[str, str]:
    """sha256 of every input file of a run: ``region.toml``, each layer it names, the catalog.

    Keys are paths relative to the region folder (the catalog: ``catalog:<name>``; the bundled
    one when ``catalog`` is None).
    """
    root = Path(region_dir)
    out: dict[str, str] = {}
    toml_path = root / "region.toml"
    if toml_path.is_file():
        out["region.toml"] = outputs.sha256(toml_path)
        layers = tomllib.loads(toml_path.read_text(encoding="utf-8")).get("layers", {})
        for spec in layers.values():
            rel = spec if isinstance(spec, str) else spec.get("path", "")
            f = root / rel
            if rel and f.is_file():
                out[rel] = outputs.sha256(f)
    with resources.as_file(
        Path(catalog)
        if catalog
        else resources.files("universal_service") / "data" / "technologies.toml"
    ) as cat:
        out[f"catalog:{Path(cat).name}"] = outputs.sha256(Path(cat))
    return dict(sorted(out.items()))


def _package_version() -> str:
    try:
        return importlib.metadata.version("universal-service")
    except importlib.metadata.PackageNotFoundError:  # a source tree on sys.path, not installed
        return "unknown"


def provenance(scenario: Scenario, region_dir: str | Path | None = None) -> dict[str, Any]:
    """What a published figure needs to be traced and reproduced, JSON-serialisable.

    ``scenario`` (the merged, validated scenario), ``overrides_applied``, ``package_version``,
    ``solver`` and ``solver_version`` (the backend :func:`universal_service.milp.solve` runs),
    ``seed`` (the solver's), ``python`` and ``inputs`` (:func:`input_hashes` of ``region_dir``,
    by default the scenario's region).
    """
    from . import milp

    cfg = scenario.config
    solver = milp.solver_used(cfg.solve.solver)
    version = ""
    try:
        version = importlib.metadata.version("highspy" if solver == "highs" else "pulp")
    except importlib.metadata.PackageNotFoundError:
        pass
    return {
        "scenario": cfg.model_dump(mode="json"),
        "overrides_applied": list(scenario.applied),
        "package_version": _package_version(),
        "solver": solver,
        "solver_version": version,
        "seed": cfg.solve.seed,
        "python": platform.python_version(),
        "inputs": input_hashes(region_dir or scenario.region_path(), scenario.catalog_path()),
    }


def with_site_layer(plan: xr.Dataset, sites: pd.DataFrame) -> xr.Dataset:
    """The Plan with what later stages need of each candidate site, so they read the Plan only.

    Adds on dim ``site``: ``site_kind`` (village / hilltop / tower), ``site_x``, ``site_y``
    [m, the region's CRS], ``site_height_m`` [m] and ``site_backhaul``.
    """
    if "site" not in plan.dims:
        return plan
    s = sites.set_index("site_id").reindex(plan["site"].values)
    extra = {
        "site_kind": ("kind", None),
        "site_x": ("x", "m"),
        "site_y": ("y", "m"),
        "site_height_m": ("height_m", "m"),
        "site_backhaul": ("backhaul", None),
    }
    out = plan.copy()
    for name, (col, units) in extra.items():
        if col in s:
            values = s[col].to_numpy()
            values = values.astype(str) if values.dtype == object else values
            out[name] = ("site", values)
            if units:
                out[name].attrs["units"] = units
    return out
