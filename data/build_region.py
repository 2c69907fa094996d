"""Build the bundled Qiannan region (``data/qiannan/``) from the reference data in ``../shared/data``.

Run from the repository root::

    python data/build_region.py --shared ../shared/data --out data/qiannan

The project never reads ``../shared`` at run time: this script is the only reader, and its output
folder is what ``io.load_region`` loads. Every value that the sources lack is derived by a
documented, seeded rule, one function per rule in the package ``data/build/`` (one module per job,
the steps in ``build/steps.py``), so a real layer can replace any of them. Sources, figures and
methods are listed in ``data/README.md``; each figure is cited where it is defined.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

# ``data/`` is the script's folder, so the package ``data/build`` imports as ``build``.
from build import region, steps


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point: ``python data/build_region.py [--shared DIR] [--out DIR]``.

    Parameters
    ----------
    argv : list of str, optional
        Arguments (default: ``sys.argv[1:]``): ``--shared`` (default ``../shared/data`` from the
        repository root), ``--out`` (default ``data/qiannan``), ``--seed`` (default 2016).
    """
    root = Path(__file__).resolve().parents[1]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--shared",
        type=Path,
        default=root / ".." / "shared" / "data",
        help="shared reference data folder (default: ../shared/data from the repo root)",
    )
    parser.add_argument("--out", type=Path, default=root / "data" / "qiannan", help="output folder")
    parser.add_argument("--seed", type=int, default=region.SEED, help="base seed")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    summary = steps.build(args.shared.resolve(), args.out, args.seed)
    for key, value in summary.items():
        print(f"{key}: {value}")
    print(f"built {args.out} in {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
