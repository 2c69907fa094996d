"""The bundled region's plan end to end: the README's plan command, timed in fresh processes.

Each run is a new ``python -m universal_service plan data/qiannan --scenario
data/scenarios/baseline.yaml --out DIR`` (interpreter start, imports, loading, costing, the
plan with shared trenches, writing every output), timed from outside. Prints each run's wall
time, the median and the fastest, and the plan the runs printed (NPV cost, status, bound,
gap, the stage timings of the last run). Issue 20's target: under 15 s at an NPV cost no
higher than CNY 169,879,088 (the plan before the target was met), with its gap to a valid
bound reported.

Run: ``python benchmarks/bundled_plan.py [--runs N]``; prints the figures.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET_S = 15.0
BEFORE_CNY = 169_879_088.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3, help="fresh processes to time")
    args = ap.parse_args()
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}"
    )
    walls, outputs = [], []
    for i in range(args.runs):
        with tempfile.TemporaryDirectory() as out:
            command = [sys.executable, "-m", "universal_service", "plan", "data/qiannan"]
            command += ["--scenario", "data/scenarios/baseline.yaml", "--out", out]
            t0 = time.perf_counter()
            done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True)
            walls.append(time.perf_counter() - t0)
            outputs.append(done.stdout)
        print(f"run {i + 1}: {walls[-1]:.1f} s")
    costs = {re.search(r"total NPV cost: CNY ([0-9,]+)", o).group(1) for o in outputs}
    print(f"wall: median {statistics.median(walls):.1f} s, fastest {min(walls):.1f} s")
    print(f"NPV cost: CNY {', '.join(sorted(costs))} (the same in every run: {len(costs) == 1})")
    for key in ("plan status", "timings", "fiber"):
        line = next(x for x in outputs[-1].splitlines() if x.strip().startswith(key))
        print(line.strip())
    cost = float(next(iter(costs)).replace(",", ""))
    met = statistics.median(walls) < TARGET_S and cost <= BEFORE_CNY
    print(
        f"target: median under {TARGET_S:.0f} s at NPV cost <= CNY {BEFORE_CNY:,.0f}: "
        f"{'met' if met else 'not met'}"
    )


if __name__ == "__main__":
    main()
