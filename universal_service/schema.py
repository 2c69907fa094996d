"""Data contracts: the columns each region layer must carry, and the scenario file's schema.

Layer specifications are plain data (``LAYERS``) read by :mod:`universal_service.io`, which
normalises source column names through ``ALIASES`` once, at the IO boundary, so nothing
downstream sees source names (the pvlib ``VARIABLE_MAP`` habit).

The scenario schema is a set of pydantic models. Every section forbids unknown keys, so a typo in a
YAML file is an error naming the key rather than a silently ignored setting.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Literal, NamedTuple

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

log = logging.getLogger(__name__)

SERVICE_LEVELS: tuple[str, ...] = ("none", "2g", "3g", "4g", "fiber")
"""Existing service levels, worst to best. ``4g`` and ``fiber`` count as broadband."""

BROADBAND_LEVELS: frozenset[str] = frozenset({"4g", "fiber"})


@dataclass(frozen=True)
class Column:
    """One column of a layer's contract.

    Parameters
    ----------
    name : str
        Normalised column name.
    kind : {"str", "float", "int", "bool"}
        Value type after coercion.
    required : bool
        Whether the loader refuses a layer without it.
    unique : bool
        Whether values must be unique.
    min_value : float, optional
        Smallest allowed value (inclusive) for numeric columns.
    allowed : tuple of str, optional
        Allowed values for categorical columns.
    default : object, optional
        Value filled in when an optional column is absent.
    description : str
        Meaning and unit, used in error messages and the docs.
    """

    name: str
    kind: Literal["str", "float", "int", "bool"]
    required: bool = True
    unique: bool = False
    min_value: float | None = None
    allowed: tuple[str, ...] | None = None
    default: object = None
    description: str = ""
    exclusive_min: bool = False


@dataclass(frozen=True)
class LayerSpec:
    """Contract of one region layer: its geometry type and columns."""

    name: str
    geometry: Literal["point", "polygon", "line", "none", "raster"]
    columns: tuple[Column, ...] = field(default_factory=tuple)
    required: bool = True


LAYERS: dict[str, LayerSpec] = {
    "villages": LayerSpec(
        "villages",
        "point",
        (
            Column("village_id", "str", unique=True, description="village identifier"),
            Column("name", "str", required=False, default="", description="village name"),
            Column("district_id", "str", description="id of the district (county) it lies in"),
            Column("population", "float", min_value=0, description="residents [persons]"),
            Column("households", "float", min_value=0, description="households [count]"),
            Column(
                "income_monthly",
                "float",
                min_value=0,
                exclusive_min=True,
                description="income per person per month [CNY]",
            ),
            Column(
                "existing_service",
                "str",
                required=False,
                default="none",
                allowed=SERVICE_LEVELS,
                description="best service today",
            ),
            Column("electrified", "bool", required=False, default=True, description="grid power"),
            Column(
                "weight", "float", required=False, default=1.0, min_value=0, description="weight"
            ),
        ),
    ),
    "districts": LayerSpec(
        "districts",
        "polygon",
        (
            Column("district_id", "str", unique=True, description="district identifier"),
            Column("name", "str", required=False, default="", description="district name"),
            Column("parent_id", "str", required=False, default="", description="parent district"),
        ),
    ),
    "pops": LayerSpec(
        "pops",
        "point",
        (
            Column("pop_id", "str", unique=True, description="fiber point-of-presence id"),
            Column("operator_id", "str", description="operator owning the PoP"),
        ),
    ),
    "towers": LayerSpec(
        "towers",
        "point",
        (
            Column("tower_id", "str", unique=True, description="tower id"),
            Column("operator_id", "str", description="operator owning the tower"),
            Column("height_m", "float", min_value=0, description="antenna height [m]"),
        ),
        required=False,
    ),
    "roads": LayerSpec("roads", "line", (), required=False),
    "operators": LayerSpec(
        "operators",
        "none",
        (
            Column("operator_id", "str", unique=True, description="operator id"),
            Column("name", "str", required=False, default="", description="operator name"),
            Column(
                "revenue_cny",
                "float",
                min_value=0,
                exclusive_min=True,
                description="annual operating revenue [CNY]",
            ),
            Column("profit_cny", "float", description="annual net profit [CNY]"),
            Column(
                "market_share",
                "float",
                required=False,
                default=float("nan"),
                min_value=0,
                description="subscriber share [0-1]",
            ),
            Column(
                "technologies",
                "str",
                required=False,
                default="fiber;microwave;4g;satellite",
                description="';'-joined technologies offered",
            ),
        ),
    ),
}

ALIASES: dict[str, str] = {
    # villages
    "id": "village_id",
    "code": "village_id",
    "villageid": "village_id",
    "village": "village_id",
    "county_id": "district_id",
    "county": "district_id",
    "adcode": "district_id",
    "district": "district_id",
    "pop": "population",
    "pop_total": "population",
    "residents": "population",
    "hh": "households",
    "income": "income_monthly",
    "income_cny_month": "income_monthly",
    "service": "existing_service",
    # operators
    "revenue": "revenue_cny",
    "profit": "profit_cny",
    "share": "market_share",
    # towers
    "height": "height_m",
    "antenna_height_m": "height_m",
}
"""Source column names (lower-cased) mapped to the contract's names."""

LON_NAMES = ("lon", "lng", "longitude", "x")
LAT_NAMES = ("lat", "latitude", "y")


# --------------------------------------------------------------------------------------------
# Plausibility limits
# --------------------------------------------------------------------------------------------


class Limit(NamedTuple):
    """The plausible range of one quantity: outside ``[low, high]`` it cannot be right."""

    low: float
    high: float
    unit: str
    reason: str


PLAUSIBLE: dict[str, Limit] = {
    # radio section of a scenario (RadioConfig)
    "radio.site_height_m": Limit(
        1.0, 300.0, "m", "antenna height above ground; the tallest lattice masts are about 300 m"
    ),
    "radio.village_height_m": Limit(
        0.5, 100.0, "m", "receiver height above ground: a handset (1.5 m) to a tall rooftop mast"
    ),
    "radio.max_range_m": Limit(
        100.0, 100_000.0, "m", "LTE timing advance ends a cell at about 100 km (TS 36.211)"
    ),
    "radio.k_factor": Limit(
        0.3, 10.0, "", "effective earth-radius factor; ITU-R P.530 sub- to super-refraction"
    ),
    "radio.tx_power_dbm": Limit(0.0, 70.0, "dBm", "1 mW to 10 kW per sector"),
    "radio.tx_antenna_gain_dbi": Limit(-10.0, 30.0, "dBi", "sector panels give 10-21 dBi"),
    "radio.rx_antenna_gain_dbi": Limit(-10.0, 30.0, "dBi", "handsets ~0 dBi, outdoor CPE <=20"),
    "radio.tx_loss_db": Limit(0.0, 30.0, "dB", "feeder and jumper loss"),
    "radio.rx_loss_db": Limit(0.0, 40.0, "dB", "body and building-entry loss"),
    "radio.threshold_dbm": Limit(
        -150.0, -40.0, "dBm", "receiver sensitivity; TS 36.101 band 8 at 10 MHz is -94 dBm"
    ),
    "radio.fade_margin_db": Limit(0.0, 40.0, "dB", "shadowing margin; 5 sigma of 8 dB"),
    # technology catalog (catalog.load_catalog): any cost, range, count or capacity
    "catalog.value": Limit(
        0.0,
        1e12,
        "",
        "in the unit its key names; no cost, range or capacity of one technology reaches 1e12",
    ),
    "radio.hilltops": Limit(
        0, 10_000, "sites", "one viewshed per candidate; beyond 10 000 the run does not end"
    ),
    # region data (io.load_region)
    "villages.population": Limit(
        0, 2_000_000, "persons", "China's most populous towns hold about 1 million residents"
    ),
    "towers.height_m": Limit(0, 300.0, "m", "the tallest lattice masts are about 300 m"),
    "operators.market_share_sum": Limit(
        0.9, 1.1, "", "the subscriber shares of the operators listed add up to 1"
    ),
    "dem.elevation_m": Limit(-450.0, 8_900.0, "m", "Dead Sea shore -430 m to Everest 8 849 m"),
    "region.crs_scale_error": Limit(
        0, 0.02, "", "length error of the region's CRS at the villages; in its UTM zone < 0.1 %"
    ),
    "region.crs_area_distance_deg": Limit(
        0, 20.0, "deg", "how far the villages lie outside the CRS's area of use"
    ),
    "villages.other_district_share": Limit(
        0, 0.10, "", "share of villages inside another district's polygon than their district_id"
    ),
    "districts.overlap_share": Limit(
        0, 0.10, "", "area two district polygons share, as a share of the smaller one"
    ),
}
"""Plausibility limits, the one documented place: quantity -> (low, high, unit, reason).

A value outside its range cannot be right and is an error naming the range and the reason; a
value inside it but outside :data:`TYPICAL` is odd but possible and logged as a warning. Keys are
``section.key`` for scenario settings and ``layer.column`` for region data.
"""

TYPICAL: dict[str, tuple[float, float]] = {
    "radio.site_height_m": (10.0, 150.0),  # 3GPP TR 38.901 RMa validity for h_BS
    "radio.village_height_m": (1.0, 30.0),
    "radio.max_range_m": (1_000.0, 35_000.0),  # extended-range rural macro cells
    "radio.k_factor": (0.5, 2.0),
    "radio.tx_power_dbm": (20.0, 49.0),  # small cell to 80 W macro
    "radio.threshold_dbm": (-110.0, -70.0),
    "radio.fade_margin_db": (0.0, 20.0),
    "villages.population": (0.0, 100_000.0),  # above: a town or a city, not a village
    "towers.height_m": (10.0, 150.0),
    "region.crs_scale_error": (0.0, 0.005),  # a neighbouring UTM zone at 26 deg N: 0.75 %
    "villages.other_district_share": (0.0, 0.0),  # any village in another district warns
    "districts.overlap_share": (0.0, 0.01),  # digitising slivers stay below 1 %
}
"""The range of values a planner meets in practice; outside it (within :data:`PLAUSIBLE`) a
warning is logged."""


def plausible_problem(quantity: str, value: float, where: str = "") -> str | None:
    """The problem with ``value`` as a ``quantity`` of :data:`PLAUSIBLE`, or None if plausible.

    Parameters
    ----------
    quantity : str
        A key of :data:`PLAUSIBLE` (``"radio.max_range_m"``).
    value : float
        The value, in the limit's unit.
    where : str
        What to name in the message (a file and key, or a row); the quantity by default.

    Returns
    -------
    str or None
        A message naming where, the value, the plausible range with its unit and reason, and
        the fix; None when the value lies inside the range.
    """
    lim = PLAUSIBLE[quantity]
    if math.isfinite(value) and lim.low <= value <= lim.high:
        return None
    unit = f" {lim.unit}" if lim.unit else ""
    return (
        f"{where or quantity} = {value:g}{unit} is outside the plausible range "
        f"{lim.low:g} to {lim.high:g}{unit} ({lim.reason}); check the value and its unit."
    )


def typical_warning(quantity: str, value: float, where: str = "") -> str | None:
    """A warning when a plausible ``value`` lies outside :data:`TYPICAL`, else None."""
    if quantity not in TYPICAL or not math.isfinite(value):
        return None
    low, high = TYPICAL[quantity]
    if low <= value <= high:
        return None
    unit = f" {PLAUSIBLE[quantity].unit}" if quantity in PLAUSIBLE else ""
    return (
        f"{where or quantity} = {value:g}{unit} is unusual (typically {low:g} to {high:g}{unit}); "
        "the plan uses it as given."
    )


# --------------------------------------------------------------------------------------------
# Scenario schema
# --------------------------------------------------------------------------------------------


#: Upper bound of every time limit [s]: a week; a limit must be finite.
WEEK_S = 7 * 24 * 3600.0


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


#: Assumption (no source): what a subscriber pays today for the data a new broadband service
#: replaces [CNY/month], per existing service level; ranges none 0, 2g 0-10, 3g 5-20. 4g and
#: fiber sit at the catalog's list tariff: a new option adds no revenue where broadband exists.
EXISTING_SPEND_CNY_PER_MONTH: dict[str, float] = {
    "none": 0.0,
    "2g": 5.0,
    "3g": 10.0,
    "4g": 50.0,
    "fiber": 50.0,
}


class PolicyConfig(_Strict):
    """Policy section of a scenario: targets, budget, affordability and appraisal settings."""

    coverage_target: float | None = Field(
        0.98, ge=0, le=1, description="share of population (or villages) to cover [0-1]"
    )
    coverage_basis: Literal["population", "villages"] = Field(
        "population",
        description="what the coverage targets count: 'population' (persons) or 'villages' "
        "(administrative villages, each counting 1: the MIIT 2015-2020 basis)",
    )
    district_targets: dict[str, float] = Field(
        default_factory=dict, description="per-district coverage share [0-1]"
    )
    budget_cny: float | None = Field(
        None, gt=0, description="budget on the money named by budget_basis [CNY]"
    )
    budget_basis: Literal["npv_cost", "subsidy", "capex"] = Field(
        "npv_cost",
        description="what budget_cny limits: the plan's NPV cost [CNY, NPV], its subsidy (the "
        "public fund, NPV) or its undiscounted capex [CNY]",
    )
    objective: Literal["min_cost", "min_subsidy", "max_coverage"] = "min_cost"
    affordability_share: float = Field(
        0.02,
        gt=0,
        le=1,
        description="max share of monthly income spent on entry broadband (A4AI '1 for 2')",
    )
    affordability_basis: Literal["per_capita", "household"] = Field(
        "per_capita",
        description=(
            "income the affordability share applies to: 'per_capita' (monthly income per person, "
            "the A4AI '1 for 2' / Broadband Commission target 2 basis, GNI per capita) or "
            "'household' (per-capita income x household size, about 3.2x looser)"
        ),
    )
    tariff_rule: Literal["uniform", "income_capped"] = Field(
        "uniform",
        description=(
            "'uniform' (default): one regulated price in every village, as universal service is "
            "defined (OECD: available to all at a uniform, affordable price); villages whose "
            "affordability cap is below it are flagged and the demand-side subsidy that closes "
            "the gap is reported. 'income_capped': each village pays its own cap"
        ),
    )
    uniform_tariff_monthly: float | None = Field(
        None,
        gt=0,
        description="the uniform tariff [CNY/month]; null: the highest price affordable in "
        "uniform_affordable_share of the villages",
    )
    uniform_affordable_share: float = Field(
        0.9, gt=0, le=1, description="share of villages the uniform tariff must be affordable in"
    )
    take_up: float = Field(
        0.4, gt=0, le=1, description="ceiling share of households subscribing (assumption)"
    )
    take_up_ramp_years: float = Field(
        5.0, ge=0, le=60, description="years take-up takes to reach its ceiling [yr] (0: at once)"
    )
    take_up_ramp: Literal["linear", "logistic"] = Field(
        "linear", description="shape of the take-up ramp from 0 to the ceiling"
    )
    existing_spend_monthly: dict[str, float] = Field(
        default_factory=lambda: dict(EXISTING_SPEND_CNY_PER_MONTH),
        description=(
            "assumption: what a subscriber already pays today for the data the new service "
            "replaces, per existing service level [CNY/month]; revenue counts only the tariff "
            "above it. Ranges: none 0, 2g 0-10, 3g 5-20; 4g and fiber at the list tariff (a new "
            "option adds nothing where broadband exists)"
        ),
    )
    revenue_margin: float = Field(
        0.35, ge=0, le=1, description="share of retail revenue available to recover network cost"
    )
    min_quality: int = Field(1, ge=0, description="lowest quality tier that counts as service")
    discount_rate: float = Field(0.08, ge=0, lt=1, description="real discount rate [1/yr]")
    horizon_years: int = Field(15, ge=1, le=60, description="appraisal horizon [yr]")
    existing_counts: bool = Field(
        True, description="villages with 4G or fiber today count as covered at no cost"
    )

    @field_validator("district_targets")
    @classmethod
    def _shares(cls, v: dict[str, float]) -> dict[str, float]:
        bad = {k: s for k, s in v.items() if not 0 <= s <= 1}
        if bad:
            raise ValueError(f"district targets must be shares in [0, 1], got {bad}")
        return {str(k): float(s) for k, s in v.items()}

    @field_validator("existing_spend_monthly")
    @classmethod
    def _spend(cls, v: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(v) - set(SERVICE_LEVELS))
        if unknown:
            raise ValueError(
                f"existing_spend_monthly keys must be service levels {list(SERVICE_LEVELS)}, "
                f"got {unknown}"
            )
        bad = {k: x for k, x in v.items() if not x >= 0}
        if bad:
            raise ValueError(f"existing_spend_monthly must be >= 0 CNY/month, got {bad}")
        return {**EXISTING_SPEND_CNY_PER_MONTH, **{str(k): float(x) for k, x in v.items()}}

    @model_validator(mode="after")
    def _objective_needs(self) -> PolicyConfig:
        if self.objective == "max_coverage" and self.budget_cny is None:
            raise ValueError(
                "objective max_coverage needs policy.budget_cny (a budget on the money of "
                "policy.budget_basis)"
            )
        return self


class RadioConfig(_Strict):
    """Radio planning settings: candidate sites, the 4G link budget and the coverage test.

    The one documented set of link-budget values: ``radio.LinkBudget.from_config`` reads them,
    and the carrier frequency comes from the technology catalog. The budget describes an LTE
    band 8 rural macro site (E-UTRA band 8, downlink 925-960 MHz, 3GPP TS 36.101 Table 5.5-1,
    the band Chinese operators use for rural LTE coverage); each default's source:

    - ``site_height_m = 35``: the 3GPP TR 38.901 RMa default base-station height h_BS.
    - ``village_height_m = 6``: project setting for the receiver at the village, no source
      given (TR 38.901's default handset height h_UT is 1.5 m).
    - ``max_range_m = 12 000``: project setting, inside the 900 MHz rural macro-cell radii (up
      to about 15 km); RMa (valid to 10 km LOS) is extrapolated beyond 10 km.
    - ``k_factor = 4/3``: median effective earth-radius factor of a standard atmosphere
      (ITU-R P.453 / P.530 use it when no local data exist).
    - ``tx_power_dbm = 46``: 40 W per sector, the macro BS power for a 10 MHz carrier in
      3GPP TR 36.814 Table A.2.1.1-2.
    - ``tx_antenna_gain_dbi = 15``, ``tx_loss_db = 2``: a typical 65-degree sector panel at
      900 MHz (vendor data 15-17 dBi) and jumper/feeder loss (assumption).
    - ``rx_antenna_gain_dbi = 0``, ``rx_loss_db = 0``: handset antenna (TR 36.814 Table
      A.2.1.1-2 uses 0 dBi); no body or building-entry loss (outdoor coverage at the village).
    - ``threshold_dbm = -94``: UE reference sensitivity for band 8 with a 10 MHz channel
      (3GPP TS 36.101 Table 7.3.1-1), total received power.
    - ``fade_margin_db = 10``: log-normal shadowing with sigma = 8 dB (TR 38.901 Table 7.4.1-1,
      RMa NLOS) at 90 % location probability (1.28 sigma = 10.2 dB).

    A value outside its range in :data:`PLAUSIBLE` is an error naming the range; one outside
    :data:`TYPICAL` is logged as a warning.
    """

    site_height_m: float = Field(35.0, description="new mast antenna height [m]")
    village_height_m: float = Field(6.0, description="village receiver height [m]")
    max_range_m: float = Field(12_000.0, description="max cell range considered [m]")
    k_factor: float = Field(4 / 3, description="effective earth radius factor")
    hilltops: int = Field(300, description="max hilltop candidate sites")
    fresnel_fraction: float = Field(0.0, ge=0, le=1.5, description="F1 clearance for 4G")
    tx_power_dbm: float = Field(46.0, description="transmitter output power per sector [dBm]")
    tx_antenna_gain_dbi: float = Field(15.0, description="site antenna gain [dBi]")
    tx_loss_db: float = Field(2.0, description="site feeder and jumper loss [dB]")
    rx_antenna_gain_dbi: float = Field(0.0, description="receiver antenna gain [dBi]")
    rx_loss_db: float = Field(0.0, description="receiver body and entry loss [dB]")
    threshold_dbm: float = Field(-94.0, description="receiver sensitivity [dBm]")
    fade_margin_db: float = Field(10.0, description="shadowing margin above it [dB]")

    @field_validator(*(k.split(".", 1)[1] for k in PLAUSIBLE if k.startswith("radio.")))
    @classmethod
    def _plausible(cls, v: float, info: ValidationInfo) -> float:
        quantity = f"radio.{info.field_name}"
        problem = plausible_problem(quantity, v)
        if problem:
            raise ValueError(problem)
        warning = typical_warning(quantity, v)
        if warning:
            log.warning("scenario %s", warning)
        return v


class NetworkConfig(_Strict):
    """Fiber network design: share trenches among the villages the plan serves by fiber."""

    shared_trench: bool = Field(True, description="design shared trenches (Steiner forest)")
    iterations: int = Field(2, ge=0, le=10, description="plan/Steiner re-solves after the first")
    # The plan reported with shared trenches is a heuristic judged against the lower-bound
    # MILP (its gap there is about 0.19), so the plan MILPs inside the iteration need not close
    # to solve.mip_gap: on the bundled region 5e-3 takes about 2 s a solve against 5-18 s at
    # 1e-4, and two re-solves reached CNY 168.3 M at every tolerance tried (2e-3 to 1e-2).
    mip_gap: float | None = Field(
        5e-3,
        ge=0,
        lt=1,
        description="gap tolerance of the plan MILPs in the shared-trench iteration, the first "
        "included [-]; null: solve.mip_gap",
    )
    # A safety net, not the stopping rule: the Steiner search stops on deterministic work limits
    # (about 15-25 s per solve on the bundled region), so the same inputs give the same plan on a
    # loaded machine too. At 10 s it cut the bundled region's search short, by wall time.
    time_limit_s: float = Field(
        300.0, gt=0, le=WEEK_S, description="wall-clock safety net of each Steiner solve [s]"
    )


REGIMES: tuple[str, ...] = ("lots", "auction", "fund", "shared")


class AllocationConfig(_Strict):
    """Allocation section: how the obligation and its cost are divided among operators.

    Every regime is computed unless ``regimes`` narrows it; see :mod:`universal_service.allocate`.
    """

    regimes: list[Literal["lots", "auction", "fund", "shared"]] = Field(
        default_factory=lambda: list(REGIMES), min_length=1, description="regimes to compute"
    )
    basis: Literal["revenue", "profit", "mix", "market_share"] = Field(
        "revenue", description="reference share of each operator's burden (lots, proportional)"
    )
    profit_weight: float = Field(
        0.5, ge=0, le=1, description="weight of the profit share in basis 'mix' (rest: revenue)"
    )
    tolerance: float = Field(
        0.1, ge=0, le=1, description="lots: burden share within +- this of the reference share"
    )
    contiguous: bool = Field(False, description="lots: each operator's districts contiguous")
    markup: float = Field(
        0.1, ge=0, le=10, description="auction: mean bid markup over the subsidy need (assumption)"
    )
    seed: int = Field(0, ge=0, le=2**31 - 1, description="auction: seed of the bid markups")
    reserve_margin: float = Field(
        0.2, ge=0, le=10, description="auction: reserve = (1 + this) x least stand-alone need"
    )
    budget_cny: float | None = Field(
        None, gt=0, description="auction budget [CNY, NPV]; null: the sum of reserve prices"
    )
    national_population: float = Field(
        1.38271e9,
        gt=0,
        description="fund: population the operators' revenue comes from [persons] (China, "
        "end-2016: 1,382.71 million, NBS Statistical Communique 2016)",
    )
    levy_base_share: float | None = Field(
        None,
        gt=0,
        le=1,
        description="fund: share of each operator's revenue earned in the region; null: region "
        "population / national_population (assumption, plausible 0.5x-2x)",
    )
    cost_sharing: Literal["shapley", "nucleolus", "proportional"] = Field(
        "shapley", description="shared: the rule that sets each operator's burden"
    )

    @field_validator("regimes")
    @classmethod
    def _unique_regimes(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError(f"regimes listed twice: {sorted(r for r in set(v) if v.count(r) > 1)}")
        return [r for r in REGIMES if r in v]


class SolveConfig(_Strict):
    """Solver settings."""

    solver: Literal["highs", "cbc"] = "highs"
    time_limit_s: float = Field(60.0, gt=0, le=WEEK_S, description="solver time limit [s]")
    mip_gap: float = Field(1e-4, ge=0, lt=1)
    threads: int = Field(1, ge=1, le=1024)
    seed: int = Field(0, ge=0, le=2**31 - 1, description="solver random seed (a 32-bit int)")


#: Prefixes of an uncertain parameter (``uncertainty.parameters``): a numeric policy field (the
#: value drawn is used as is), a catalog entry ``catalog.<technology>.<key>`` and the villages'
#: population and households ``demand.population`` (the value drawn multiplies the given one).
UNCERTAIN_PREFIXES = ("policy.", "catalog.", "demand.population")


class UncertaintyConfig(_Strict):
    """Monte Carlo settings: how many draws, the seed, and each uncertain parameter's range."""

    draws: int = Field(20, ge=1, le=10_000, description="number of draws")
    seed: int = Field(0, ge=0, le=2**31 - 1, description="seed of the draws")
    parameters: dict[str, list[float]] = Field(
        default_factory=dict,
        description="dotted key -> [low, high] (uniform) or [low, mode, high] (triangular)",
    )

    @field_validator("parameters")
    @classmethod
    def _ranges(cls, v: dict[str, list[float]]) -> dict[str, list[float]]:
        problems = []
        numeric = {
            k
            for k, f in PolicyConfig.model_fields.items()
            if ("float" in str(f.annotation) or "int" in str(f.annotation))
            and "dict" not in str(f.annotation)
        }
        for key, r in v.items():
            if not key.startswith(UNCERTAIN_PREFIXES):
                problems.append(f"'{key}': expected a key starting with {list(UNCERTAIN_PREFIXES)}")
            elif key.startswith("policy.") and key[7:] not in numeric:
                problems.append(f"'{key}': not a numeric policy field ({sorted(numeric)})")
            elif key.startswith("catalog.") and len(key.split(".")) != 3:
                problems.append(f"'{key}': expected catalog.<technology>.<key>")
            elif key.startswith("demand.") and key != "demand.population":
                problems.append(f"'{key}': the demand parameter is 'demand.population'")
            if len(r) not in (2, 3) or not all(math.isfinite(x) for x in r):
                problems.append(f"'{key}': expected [low, high] or [low, mode, high], got {r}")
            elif sorted(r) != list(r) or r[0] == r[-1]:
                problems.append(f"'{key}': need low <= (mode <=) high and low < high, got {r}")
        if problems:
            raise ValueError("; ".join(problems))
        return v


class RolloutConfig(_Strict):
    """Rollout section: when each part of the plan is built, under an annual budget and milestones.

    See :mod:`universal_service.rollout`. Milestones are year -> share by the end of that year:
    of what the plan newly serves (``obligation``, as the FCC's CAF-II 40/60/80/100% of
    locations by the end of years 3-6, 47 CFR 54.310(c)) or of the region covered, already
    served villages included (``coverage``), on the policy's ``coverage_basis``.
    """

    start_year: int = Field(2016, ge=1900, le=2200, description="first build year")
    years: int = Field(5, ge=1, le=30, description="number of build years")
    annual_budget_cny: float | list[float] | None = Field(
        None, description="capex each year [CNY, undiscounted]; a list: one per year; null: none"
    )
    carry_over: bool = Field(False, description="budget unspent in a year may be spent later")
    milestones: dict[int, float] = Field(
        default_factory=dict, description="year -> share served by the end of that year"
    )
    milestone_basis: Literal["obligation", "coverage"] = Field(
        "obligation", description="milestone shares of the plan's obligation, or of the region"
    )
    objective: Literal["earliest", "cheapest"] = Field(
        "earliest",
        description="earliest: most people (villages) served soonest; cheapest: least PV of capex",
    )
    time_limit_s: float = Field(60.0, gt=0, le=WEEK_S, description="solver time limit [s]")
    mip_gap: float = Field(
        1e-3, ge=0, lt=1, description="relative gap at which it stops (0.1% of person-years)"
    )

    @model_validator(mode="after")
    def _consistent(self) -> RolloutConfig:
        problems = []
        last = self.start_year + self.years - 1
        budget = self.annual_budget_cny
        if isinstance(budget, list) and len(budget) != self.years:
            problems.append(
                f"annual_budget_cny: {len(budget)} values for {self.years} years; give one per "
                "year or a single number"
            )
        values = budget if isinstance(budget, list) else [budget] if budget is not None else []
        if any(not math.isfinite(b) or b < 0 for b in values):
            problems.append(f"annual_budget_cny: expected finite values >= 0, got {budget}")
        for year, share in sorted(self.milestones.items()):
            if not self.start_year <= year <= last:
                problems.append(
                    f"milestones: year {year} is outside the rollout {self.start_year}-{last}"
                    " (set start_year and years to include it)"
                )
            if not (math.isfinite(share) and 0 <= share <= 1):
                problems.append(f"milestones: {year}: expected a share in [0, 1], got {share}")
        shares = [s for _, s in sorted(self.milestones.items())]
        if any(b < a for a, b in zip(shares, shares[1:], strict=False)):
            problems.append(
                f"milestones: shares must not fall from year to year: {self.milestones}"
            )
        if self.objective == "cheapest" and not self.milestones:
            problems.append(
                "objective 'cheapest' needs milestones (without them nothing need be built)"
            )
        if problems:
            raise ValueError("; ".join(problems))
        return self


class ScenarioConfig(_Strict):
    """A complete, validated scenario."""

    name: str = Field("baseline", min_length=1, max_length=200)
    description: str = Field("", max_length=10_000)
    region: str | None = Field(
        None, max_length=4096, description="region folder, relative to the scenario file"
    )
    catalog: str | None = Field(
        None, max_length=4096, description="technology catalog, relative to the file"
    )
    policy: PolicyConfig = Field(default_factory=PolicyConfig)
    radio: RadioConfig = Field(default_factory=RadioConfig)
    network: NetworkConfig = Field(default_factory=NetworkConfig)
    allocation: AllocationConfig = Field(default_factory=AllocationConfig)
    solve: SolveConfig = Field(default_factory=SolveConfig)
    uncertainty: UncertaintyConfig = Field(default_factory=UncertaintyConfig)
    rollout: RolloutConfig = Field(default_factory=RolloutConfig)
