"""The run's table on the terminal, in `results.md`, and as a plot in `results.png`."""

import math
import os
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

# The object API without pyplot: no display backend, so it runs on servers and CI.
from matplotlib.figure import Figure as Plot

from bench.figures import Figure, Results

HEADER = ("what", "measured", "baseline (same run)", "ratio", "target", "")


def _amount(value: float, unit: str) -> str:
    if not math.isfinite(value):
        return "—"
    if unit == "s":
        return f"{value:.2f} s"
    if unit == "ms":
        return f"{value:.0f} ms" if value >= 10 else f"{value:.1f} ms"
    if unit == "MB":
        return f"{value:.0f} MB"
    return f"{value:,.0f} {unit}"


def _row(figure: Figure) -> tuple[str, ...]:
    verdict = {True: "met", False: "missed", None: ""}[figure.met]
    return (
        figure.name,
        _amount(figure.value, figure.unit),
        f"{_amount(figure.baseline, figure.unit)} ({figure.baseline_name})",
        f"{figure.ratio:.2f}×",
        figure.target,
        verdict,
    )


def _sections(results: Results) -> dict[str, list[tuple[str, ...]]]:
    sections: dict[str, list[tuple[str, ...]]] = {}
    for figure in results.figures:
        sections.setdefault(figure.section, []).append(_row(figure))
    return sections


def text_table(results: Results) -> str:
    """The table for a terminal: aligned columns, one block per section."""
    lines: list[str] = []
    for section, rows in _sections(results).items():
        widths = [max(len(r[i]) for r in [HEADER, *rows]) for i in range(len(HEADER))]
        lines += ["", section.upper()]
        for row in [HEADER, *rows]:
            lines.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))
    return "\n".join(lines)


def _commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def machine() -> dict[str, Any]:
    return {
        "cores": os.cpu_count(),
        "load_average": os.getloadavg(),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": _commit(),
    }


def markdown(results: Results, command: str, about: dict[str, Any], plot_name: str) -> str:
    load = ", ".join(f"{x:.1f}" for x in about["load_average"])
    lines = [
        "# Benchmark results",
        "",
        f"`{command}` on {about['date']}, commit "
        f"{about['commit']}: {about['cores']} cores, load average {load} when it started "
        "(the machine is shared, so absolute figures are noisy: compare the ratios, "
        "which set each figure against its baseline measured in the same run).",
        "",
    ]
    for section, rows in _sections(results).items():
        lines += [f"## {section.capitalize()}", ""]
        lines.append("| " + " | ".join(HEADER[:-1]) + " | |")
        lines.append("|" + "---|" * len(HEADER))
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        lines.append("")
    if results.notes:
        lines += ["## Notes", ""] + [f"- {note}" for note in results.notes] + [""]
    lines += [f"![latency and settlement]({plot_name})", ""]
    return "\n".join(lines)


def plot(results: Results, path: Path) -> None:
    """Latency distribution, settlement time against bet count, and peak memory."""
    fig = Plot(figsize=(16, 5), layout="tight")
    lat, settle, memory = fig.subplots(1, 3)
    latency = results.samples.get("latency", {})
    for key, label in (
        ("change_visible_ms", "score change → GET /bets shows it"),
        ("change_event_visible_ms", "score change → event shows it"),
        ("create_to_readable_ms", "POST /events → readable"),
        ("change_floor_ms", "baseline: UPDATE of a copy + GET /bets"),
    ):
        values = sorted(latency.get(key, []))
        if values:
            share = [(i + 1) / len(values) for i in range(len(values))]
            lat.step(values, share, where="post", label=label)
    for limit in (150, 500):
        lat.axvline(limit, color="grey", linestyle=":", linewidth=1)
    lat.set(xscale="log", xlabel="ms (log)", ylabel="share of samples", title="Latency (CDF)")
    lat.legend(fontsize=8)

    rows = results.samples.get("settlement", [])
    counts = sorted({r["bets"] for r in rows})
    for step in dict.fromkeys(r["step"] for r in rows):
        xs = [r["bets"] for r in rows if r["step"] == step]
        settle.plot(xs, [r["pipeline_s"] for r in rows if r["step"] == step], "o-", label=step)
    baseline = [sum(r["baseline_s"] for r in rows if r["bets"] == c) / 4 for c in counts]
    settle.plot(counts, baseline, "ks--", label="one UPDATE of a copy (mean of steps)")
    settle.plot(counts, [3 * b for b in baseline], "k:", label="target: 3× the UPDATE")
    settle.set(xscale="log", yscale="log", xlabel="bets", ylabel="s (log)", title="Settlement")
    settle.legend(fontsize=8)

    for function in dict.fromkeys(f for r in rows for f in r["peak_rss_mb"]):
        peaks = [max(r["peak_rss_mb"][function] for r in rows if r["bets"] == c) for c in counts]
        memory.plot(counts, peaks, "o-", label=function)
    memory.axhline(250, color="grey", linestyle=":", linewidth=1, label="target: 250 MB")
    memory.set(xscale="log", xlabel="bets", ylabel="MB", title="Peak RSS while settling")
    memory.set_ylim(bottom=0)
    memory.legend(fontsize=8)
    fig.savefig(path, dpi=110)
