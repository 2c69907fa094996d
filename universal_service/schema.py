"""Data contracts: the columns each region layer must carry, and the scenario file's schema.

Layer specifications are plain data (``LAYERS``) read by :mod:`universal_service.io`, which
normalises source column names through ``ALIASES`` once, at the IO boundary, so nothing
downstream sees source names (the pvlib ``VARIABLE_MAP`` habit).

The scenario schema is a set of pydantic models. Every section forbids unknown keys, so a typo in a
YAML file is an error naming the key rather than a silently ignored setting.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

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
# Scenario schema
# --------------------------------------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PolicyConfig(_Strict):
    """Policy section of a scenario: targets, budget, affordability and appraisal settings."""

    coverage_target: float | None = Field(
        0.98, ge=0, le=1, description="share of population (or villages) to cover [0-1]"
    )
    coverage_basis: Literal["population", "villages"] = "population"
    district_targets: dict[str, float] = Field(
        default_factory=dict, description="per-district coverage share [0-1]"
    )
    budget_cny: float | None = Field(None, gt=0, description="total NPV budget [CNY]")
    objective: Literal["min_cost", "min_subsidy", "max_coverage"] = "min_cost"
    affordability_share: float = Field(
        0.02, gt=0, le=1, description="max share of monthly household income spent on service"
    )
    take_up: float = Field(0.4, gt=0, le=1, description="share of households subscribing")
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

    @model_validator(mode="after")
    def _objective_needs(self) -> PolicyConfig:
        if self.objective == "max_coverage" and self.budget_cny is None:
            raise ValueError("objective max_coverage needs policy.budget_cny (a total NPV budget)")
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
    """

    site_height_m: float = Field(35.0, gt=0, description="new mast antenna height [m]")
    village_height_m: float = Field(6.0, gt=0, description="village receiver height [m]")
    max_range_m: float = Field(12_000.0, gt=0, description="max cell range considered [m]")
    k_factor: float = Field(4 / 3, gt=0, description="effective earth radius factor")
    hilltops: int = Field(300, ge=0, description="max hilltop candidate sites")
    fresnel_fraction: float = Field(0.0, ge=0, le=1.5, description="F1 clearance for 4G")
    tx_power_dbm: float = Field(46.0, description="transmitter output power per sector [dBm]")
    tx_antenna_gain_dbi: float = Field(15.0, description="site antenna gain [dBi]")
    tx_loss_db: float = Field(2.0, ge=0, description="site feeder and jumper loss [dB]")
    rx_antenna_gain_dbi: float = Field(0.0, description="receiver antenna gain [dBi]")
    rx_loss_db: float = Field(0.0, ge=0, description="receiver body and entry loss [dB]")
    threshold_dbm: float = Field(-94.0, description="receiver sensitivity [dBm]")
    fade_margin_db: float = Field(10.0, ge=0, description="shadowing margin above it [dB]")


class NetworkConfig(_Strict):
    """Fiber network design: share trenches among the villages the plan serves by fiber."""

    shared_trench: bool = Field(True, description="design shared trenches (Steiner forest)")
    iterations: int = Field(2, ge=0, le=10, description="plan/Steiner re-solves after the first")
    # A safety net, not the stopping rule: the Steiner search stops on deterministic work limits
    # (about 15-25 s per solve on the bundled region), so the same inputs give the same plan on a
    # loaded machine too. At 10 s it cut the bundled region's search short, by wall time.
    time_limit_s: float = Field(
        300.0, gt=0, description="wall-clock safety net of each Steiner solve [s]"
    )


class AllocationConfig(_Strict):
    """Allocation section: which regime assigns obligations among operators."""

    regime: Literal["revenue_share", "auction", "fund", "shared_network"] = "revenue_share"
    basis: Literal["revenue", "profit", "market_share"] = "revenue"
    tolerance: float = Field(0.1, ge=0, le=1)
    markup: float = Field(0.1, ge=0)
    cost_sharing: Literal["shapley", "nucleolus", "proportional"] = "shapley"


class SolveConfig(_Strict):
    """Solver settings."""

    solver: Literal["highs", "cbc"] = "highs"
    time_limit_s: float = Field(60.0, gt=0)
    mip_gap: float = Field(1e-4, ge=0, lt=1)
    threads: int = Field(1, ge=1)
    seed: int = 0


class ScenarioConfig(_Strict):
    """A complete, validated scenario."""

    name: str = "baseline"
    description: str = ""
    region: str | None = Field(None, description="region folder, relative to the scenario file")
    catalog: str | None = Field(None, description="technology catalog, relative to the file")
    policy: PolicyConfig = Field(default_factory=PolicyConfig)
    radio: RadioConfig = Field(default_factory=RadioConfig)
    network: NetworkConfig = Field(default_factory=NetworkConfig)
    allocation: AllocationConfig = Field(default_factory=AllocationConfig)
    solve: SolveConfig = Field(default_factory=SolveConfig)
