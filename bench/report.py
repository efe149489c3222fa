"""The one table the benchmark prints, and bench/RESULTS.md."""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass, field
from pathlib import Path

TABLE_HEADER = "| Measurement | Result | Target / baseline | Status |"
ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Row:
    measurement: str
    result: str
    target: str = ""
    status: str = ""


@dataclass
class Report:
    command: str
    mode: str
    date: str
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    profile: list[str] = field(default_factory=list)
    prices: list[tuple[str, str, str]] = field(default_factory=list)
    prices_date: str = ""
    seconds: float = 0.0
    # Directories of this machine that must not appear in the output (replaced by a placeholder).
    private_paths: dict[str, str] = field(default_factory=dict)

    def add(self, measurement: str, result: str, target: str = "", status: str = "") -> None:
        self.rows.append(Row(measurement, result, target, status))

    def section(self, title: str) -> None:
        self.rows.append(Row(f"**{title}**", "", "", ""))


def status(met: bool | None) -> str:
    if met is None:
        return "n/a"
    return "met" if met else "NOT met"


def machine() -> str:
    cores = os.cpu_count() or 0
    return (
        f"{cores} cores ({platform.machine()}), Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()} ({_os_name()})"
    )


def _os_name() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip('"')
    except OSError:
        pass
    return platform.platform()


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def scrub(text: str, report: Report) -> str:
    """The text without this machine's directories (error messages can carry them)."""
    replacements = {**report.private_paths, str(ROOT): ".", str(Path.home()): "~"}
    for path, placeholder in sorted(replacements.items(), key=lambda item: len(item[0]), reverse=True):
        if path and path not in (".", "/"):
            text = text.replace(path, placeholder)
    return text


def table(report: Report) -> str:
    lines = [TABLE_HEADER, "|---|---|---|---|"]
    for row in report.rows:
        lines.append(f"| {_cell(row.measurement)} | {_cell(row.result)} | {_cell(row.target)} | {_cell(row.status)} |")
    return "\n".join(lines)


def markdown(report: Report) -> str:
    parts = [
        "# Benchmark results",
        "",
        f"- Machine: {machine()}",
        f"- Date: {report.date}",
        f"- Command: `{report.command}` ({report.mode} run, {report.seconds:.0f} s)",
        "",
        table(report),
        "",
        f"## Prices used (USD, list, looked up {report.prices_date})",
        "",
        "| Item | Price | Source (region) |",
        "|---|---|---|",
        *(f"| {_cell(a)} | {_cell(b)} | {_cell(c)} |" for a, b, c in report.prices),
        "",
        "## Where the engine's time goes (cProfile)",
        "",
        *report.profile,
        "",
        "## Notes",
        "",
        *(f"- {note}" for note in report.notes),
        "",
    ]
    return scrub("\n".join(parts), report)
