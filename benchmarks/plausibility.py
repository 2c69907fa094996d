"""The bundled baseline beside published anchors: towers, existing service, capex, subsidy, routes.

Run: ``python benchmarks/plausibility.py [--file SCENARIO]``; prints one row per metric (the
model's value, the published anchor and its source) from :func:`universal_service.report.
plausibility`. RESULTS.md records the figures.
"""

from __future__ import annotations

import argparse

import pandas as pd

from universal_service import report, scenarios


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--file", default=None, help="scenario file (default: the bundled baseline)")
    args = ap.parse_args()
    result = scenarios.run(scenarios.load_scenario(args.file), with_baseline=False)
    table = report.plausibility(result)
    with pd.option_context("display.width", 200, "display.max_colwidth", 90):
        print(table.to_string(index=False, float_format=lambda x: f"{x:,.4g}"))


if __name__ == "__main__":
    main()
