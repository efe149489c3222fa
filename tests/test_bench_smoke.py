"""The benchmark keeps working: a smoke run (tiny sizes, no third-party baselines) exits 0 and
prints its table. No timing is asserted: figures on a shared CI machine mean nothing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from bench.report import TABLE_HEADER

ROOT = Path(__file__).resolve().parent.parent


def test_bench_smoke_run_prints_the_table(tmp_path: Path) -> None:
    output = tmp_path / "RESULTS.md"
    result = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke", "--no-baselines", "--output", str(output)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert TABLE_HEADER in result.stdout
    for row in ("Our engine", "Bare aiohttp", "storage transactions", "Cost per million", "Latency", "Growth"):
        assert row in result.stdout, row
    written = output.read_text()
    assert "- Machine:" in written and TABLE_HEADER in written
    assert str(ROOT) not in written  # no directories of the machine in the results
