"""Benchmark the optimizer: OR-Library capb/capc against a direct HiGHS floor, and a scaling table.

Run ``python benchmarks/optimizer.py`` (full: capb, capc, scaling at 10k / 100k / 1M options) or
``python benchmarks/optimizer.py --quick`` (capb and 10k / 100k options, under a minute). ``--profile``
adds a pyinstrument profile of ``optimize.plan`` on capb.

OR-Library data: Beasley, J.E. (1990) "OR-Library: distributing test problems by electronic mail",
J. Oper. Res. Soc. 41(11):1069-1072; capacitated warehouse location files capb and capc (100
warehouses x 1000 customers) of Beasley, J.E. (1988) EJOR 33:314-325, copied from the public
repository KanekiYokan/LP-Solution-Optimizer (data/beasley-cap/a-c/, commit 2b82fd6). With
capacities ignored they are the uncapacitated instances whose optima are listed in OR-Library's
``uncapopt`` table (capb 12979071.58143, capc 11505594.32878).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.spatial import cKDTree

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from universal_service import instances, optimize  # noqa: E402

DATA = Path(__file__).parent / "data" / "orlib"
#: OR-Library ``uncapopt`` optimal values (Beasley 1990) [cost units of the instance].
UNCAPOPT = {"capb": 12979071.58143, "capc": 11505594.32878}


def direct_highs(fixed: np.ndarray, assign: np.ndarray, mip_gap: float) -> dict[str, float]:
    """The floor: the textbook strong UFL model from NumPy arrays straight into highspy.

    ``min sum c x + sum f y`` s.t. ``sum_i x[j,i] = 1``, ``x[j,i] <= y[i]``, binary; built as one CSC
    matrix and passed with ``passModel``, solved with the same options as :func:`optimize.plan`.
    """
    import highspy

    t0 = time.perf_counter()
    n, m = assign.shape
    nx = n * m
    cols = np.r_[np.arange(nx), np.arange(nx), nx + np.tile(np.arange(m), n)]
    rows = np.r_[np.repeat(np.arange(n), m), n + np.arange(nx), n + np.arange(nx)]
    vals = np.r_[np.ones(2 * nx), -np.ones(nx)]
    a = sparse.csc_matrix((vals, (rows, cols)), shape=(n + nx, nx + m))
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = nx + m, n + nx
    lp.col_cost_ = np.r_[assign.ravel(), fixed]
    lp.col_lower_, lp.col_upper_ = np.zeros(nx + m), np.ones(nx + m)
    lp.row_lower_ = np.r_[np.ones(n), np.full(nx, -highspy.kHighsInf)]
    lp.row_upper_ = np.r_[np.ones(n), np.zeros(nx)]
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_, lp.a_matrix_.index_, lp.a_matrix_.value_ = a.indptr, a.indices, a.data
    lp.integrality_ = [highspy.HighsVarType.kInteger] * (nx + m)
    h = highspy.Highs()
    for key, value in {
        "output_flag": False,
        "mip_rel_gap": mip_gap,
        "threads": 1,
        "random_seed": 0,
    }.items():
        h.setOptionValue(key, value)
    h.passModel(lp)
    t1 = time.perf_counter()
    h.run()
    t2 = time.perf_counter()
    objective = h.getInfo().objective_function_value
    h.passModel(lp)  # the same model, LP relaxation only: what an LP-first solve cannot avoid
    h.setOptionValue("solve_relaxation", True)
    t3 = time.perf_counter()
    h.run()
    lp_s = time.perf_counter() - t3
    return {"build_s": t1 - t0, "solve_s": t2 - t1, "objective": objective, "lp_s": lp_s}


def run_orlib(name: str, mip_gap: float) -> None:
    fixed, assign = instances.read_orlib_cap(DATA / f"{name}.txt")
    options, sites = instances.orlib_tables(fixed, assign)
    floor = direct_highs(fixed, assign, mip_gap)
    t0 = time.perf_counter()
    plan = optimize.plan(options, sites, optimize.Policy(coverage_target=1.0, mip_gap=mip_gap))
    wall = time.perf_counter() - t0
    base = optimize.baseline(options, sites, optimize.Policy(coverage_target=1.0))
    a = plan.attrs
    reached = abs(a["objective"] - UNCAPOPT[name]) <= 1e-6 * UNCAPOPT[name]
    print(
        f"\n{name}: {len(options):,} options, {len(sites)} sites; published optimum {UNCAPOPT[name]:,.5f}"
    )
    print(
        f"  plan      objective {a['objective']:,.5f}  status {a['status']}  gap {a['gap']:.2e}  optimum reached: {reached}"
    )
    print(f"            LP bound {a['lp_bound']:,.2f}  ({a['termination']})")
    print(
        f"            build {a['build_seconds']:.2f} s  solve {a['solve_seconds']:.2f} s  total {wall:.2f} s"
    )
    print(
        f"  floor     objective {floor['objective']:,.5f}  build {floor['build_s']:.2f} s  solve {floor['solve_s']:.2f} s  total {floor['build_s'] + floor['solve_s']:.2f} s"
    )
    ratio = wall / (floor["build_s"] + floor["solve_s"])
    print(f"  ratio plan / floor (build + solve): {ratio:.2f}x  (target <= 2x)")
    print(
        f"  floor LP relaxation alone {floor['lp_s']:.2f} s; plan wall time outside the solver "
        f"(validation, build, result) {wall - a['solve_seconds']:.2f} s"
    )
    saving = 1 - a["total_cost"] / base.attrs["total_cost"]
    print(
        f"  no-sharing baseline {base.attrs['total_cost']:,.0f}: sharing sites saves {saving:.1%}"
    )


def generate(
    n_options: int, seed: int = 0, per_village: int = 10
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A seeded national-style instance with about ``n_options`` options.

    Villages and candidate tower sites are scattered over a square (about 2 km between villages);
    every village has fiber (no site), satellite (no site, quality 1, not counted as covered) and
    4G from its ``per_village - 2`` nearest candidate sites (one site per 4 villages). Costs are NPV
    [CNY] rising with distance; weights are populations (lognormal); districts are 30 km grid cells.
    """
    rng = np.random.default_rng(seed)
    n_v = max(1, n_options // per_village)
    n_s = max(per_village, n_v // 4)
    side = 2.0 * np.sqrt(n_v)  # [km]
    villages = rng.uniform(0, side, (n_v, 2))
    site_xy = rng.uniform(0, side, (n_s, 2))
    k = per_village - 2
    dist, near = cKDTree(site_xy).query(villages, k=k)  # [km]
    pops = rng.uniform(0, side, (max(1, n_v // 50), 2))
    to_pop = cKDTree(pops).query(villages)[0]  # [km]
    population = np.round(rng.lognormal(6.0, 0.8, n_v)) + 1
    vid = np.array([f"v{i:07d}" for i in range(n_v)], dtype=object)
    sid = np.array([f"s{j:06d}" for j in range(n_s)], dtype=object)
    district = np.array(
        [f"{int(x // 30):03d}{int(y // 30):03d}" for x, y in villages], dtype=object
    )
    tower_cost = 60_000 + 25_000 * dist + rng.uniform(0, 20_000, dist.shape)
    revenue = (
        population * 12 * 20 * 8.0
    )  # persons x months x CNY/month x annuity factor, ~NPV [CNY]
    fiber = 150_000 + 90_000 * to_pop
    options = pd.DataFrame(
        {
            "village_id": np.r_[np.repeat(vid, k), vid, vid],
            "option_id": np.r_[
                np.char.add("4g_", sid[near.ravel()].astype(str)),
                np.full(n_v, "fiber"),
                np.full(n_v, "sat"),
            ],
            "technology": np.r_[
                np.full(n_v * k, "4g"), np.full(n_v, "fiber"), np.full(n_v, "satellite")
            ],
            "site_id": np.r_[sid[near.ravel()], np.full(n_v, ""), np.full(n_v, "")],
            "cost": np.r_[tower_cost.ravel(), fiber, np.full(n_v, 120_000.0)],
            "quality": np.r_[np.full(n_v * k, 2), np.full(n_v, 3), np.full(n_v, 1)],
            "counts_as_covered": np.r_[
                np.ones(n_v * k + n_v, dtype=bool), np.zeros(n_v, dtype=bool)
            ],
            "weight": np.r_[np.repeat(population, k), population, population],
            "district_id": np.r_[np.repeat(district, k), district, district],
        }
    )
    options["net_cost"] = options["cost"] - np.r_[np.repeat(revenue, k), revenue, revenue]
    sites = pd.DataFrame({"site_id": sid, "cost": rng.uniform(300_000, 600_000, n_s)})
    return options, sites


def _status_kib(pid: int | str, key: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def _descendants(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            kids = [int(k) for k in (task / "children").read_text().split()]
        except OSError:
            continue
        for kid in kids:
            out += [kid, *_descendants(kid)]
    return out


class PeakMemory(threading.Thread):
    """Peak resident memory of this process plus its child processes (the guarded MILP), sampled
    from /proc every 20 ms [MiB]; ``self_hwm`` is this process's exact high-water mark (VmHWM)."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak_kib, self._done = 0, threading.Event()

    def run(self) -> None:
        me = Path("/proc/self").resolve().name
        while not self._done.wait(0.02):
            total = sum(_status_kib(p, "VmRSS") for p in [int(me), *_descendants(int(me))])
            self.peak_kib = max(self.peak_kib, total)

    def stop(self) -> tuple[float, float]:
        self._done.set()
        self.join()
        hwm = _status_kib("self", "VmHWM") / 1024
        return max(self.peak_kib / 1024, hwm), hwm


def scaling_point(n_options: int, time_limit_s: float) -> dict[str, float]:
    """Build and solve one generated instance; report phase times and this process's peak RSS."""
    options, sites = generate(n_options)
    policy = optimize.Policy(coverage_target=0.9, time_limit_s=time_limit_s, mip_gap=1e-3)
    before = _status_kib("self", "VmRSS") / 1024
    sampler = PeakMemory()
    sampler.start()
    t0 = time.perf_counter()
    plan = optimize.plan(options, sites, policy)
    wall = time.perf_counter() - t0
    peak, self_hwm = sampler.stop()
    a = plan.attrs
    return {
        "options": len(options),
        "villages": int(plan.sizes["village"]),
        "sites": len(sites),
        "n_rows": a["n_rows"],
        "n_cols": a["n_cols"],
        "nnz": a["n_nonzeros"],
        "removed": a["n_options_removed_dominated"],
        "build_s": a["build_seconds"],
        "solve_s": a["solve_seconds"],
        "wall_s": wall,
        "status": a["status"],
        "gap": a["gap"],
        "peak_mib": peak,
        "self_hwm_mib": self_hwm,
        "inputs_mib": before,
    }


def run_scaling(sizes: list[int], time_limit_s: float) -> None:
    """One subprocess per size, so that each peak memory figure is that size's own."""
    print(
        f"\nscaling (generated, seed 0; coverage target 0.9, mip_gap 1e-3, time limit {time_limit_s:.0f} s)\n"
        "  inputs = RSS with the tables loaded; peak = max RSS of the process and its MILP child in plan()"
    )
    head = (
        f"{'options':>10} {'villages':>9} {'sites':>7} {'rows':>10} {'cols':>10} {'nnz':>10} "
        f"{'dominated':>9} {'build s':>8} {'solve s':>8} {'status':>10} {'gap':>8} {'inputs MiB':>10} {'peak MiB':>9}"
    )
    print(head)
    for n in sizes:
        cmd = [sys.executable, __file__, "--point", str(n), "--time-limit", str(time_limit_s)]
        out = (
            subprocess.run(cmd, capture_output=True, text=True, check=True)
            .stdout.strip()
            .splitlines()[-1]
        )
        r = json.loads(out)
        print(
            f"{r['options']:>10,} {r['villages']:>9,} {r['sites']:>7,} {r['n_rows']:>10,} {r['n_cols']:>10,} {r['nnz']:>10,} "
            f"{r['removed']:>9,} {r['build_s']:>8.2f} {r['solve_s']:>8.2f} {r['status']:>10} {r['gap']:>8.1e} {r['inputs_mib']:>10.0f} {r['peak_mib']:>9.0f}"
        )


def run_profile() -> None:
    from pyinstrument import Profiler

    options, sites = instances.orlib_tables(*instances.read_orlib_cap(DATA / "capb.txt"))
    profiler = Profiler(interval=0.001)
    profiler.start()
    optimize.plan(options, sites, optimize.Policy(coverage_target=1.0))
    profiler.stop()
    print(profiler.output_text(unicode=False, color=False, short_mode=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="capb and 10k/100k options only (under a minute)"
    )
    parser.add_argument(
        "--profile", action="store_true", help="pyinstrument profile of plan() on capb"
    )
    parser.add_argument("--point", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--time-limit", type=float, default=300.0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.point:
        print(json.dumps(scaling_point(args.point, args.time_limit)))
        return
    print("optimizer benchmark (HiGHS threads=1; wall times on this machine)")
    for name in ["capb"] if args.quick else ["capb", "capc"]:
        run_orlib(name, mip_gap=1e-6)
    if args.quick:
        run_scaling([10_000, 100_000], time_limit_s=10.0)
    else:
        run_scaling([10_000, 100_000, 1_000_000], time_limit_s=300.0)
    if args.profile:
        run_profile()


if __name__ == "__main__":
    main()
