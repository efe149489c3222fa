"""`python -m bench`: run every measurement, print one table, write bench/RESULTS.md.

python -m bench                  # full run (a few minutes), writes bench/RESULTS.md
python -m bench --smoke          # tiny sizes (< 60 s), prints the table only
python -m bench --no-baselines   # skip django-push-notifications and npm wns (offline, CI)
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
from pathlib import Path

from bench.tlsboot import trust_sandbox_ca

BENCH = Path(__file__).resolve().parent


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Throughput, operations, cost, latency and growth of the WNS delivery engine, "
        "each against a baseline measured in the same run.",
    )
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, to check the benchmark works (< 60 s)")
    parser.add_argument(
        "--no-baselines",
        action="store_true",
        help="skip the third-party baselines (django-push-notifications, npm wns), which install packages",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=None,
        help="where to write the results (default: bench/RESULTS.md for a full run; a smoke run writes nothing)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    state_dir = Path(tempfile.mkdtemp(prefix="pushfuncs-bench-"))
    try:
        # Before anything imports aiohttp (the app, the sandbox, the clients): trust the sandbox CA.
        trust_sandbox_ca(state_dir)
        from bench.report import markdown, table
        from bench.runner import Options, run

        command = "python -m bench" + "".join(
            flag for flag, on in ((" --smoke", args.smoke), (" --no-baselines", args.no_baselines)) if on
        )
        options = Options(
            smoke=args.smoke,
            baselines=not args.no_baselines,
            command=command,
            state_dir=state_dir,
            work_dir=state_dir,
        )
        report = asyncio.run(run(options))
        print()
        print(table(report))
        output = args.output if args.output is not None else (None if args.smoke else BENCH / "RESULTS.md")
        if output is not None:
            output.write_text(markdown(report))
            print(f"\nwritten: {output}")
        return 0
    finally:
        shutil.rmtree(state_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
