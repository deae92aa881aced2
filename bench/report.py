"""Output: the table on the terminal, bench/results/latest.json and latest.md, and the copy of the
Markdown table in docs/benchmarks.md (between its `bench:latest` and `bench:<scale>` markers)."""

from __future__ import annotations

import json
import math
from pathlib import Path

from .env import RESULTS, ROOT
from .metrics import Metric

DOCS = ROOT / "docs" / "benchmarks.md"


def _replace_between(text: str, marker: str, content: str) -> str:
    start, end = f"<!-- bench:{marker}:start -->", f"<!-- bench:{marker}:end -->"
    if start not in text or end not in text:
        return text
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{start}\n{content}{end}{tail}"


def fmt(value, unit: str) -> str:
    if value is None:
        return "–"
    if isinstance(value, float) and math.isinf(value):
        return "∞"
    if unit == "s":
        return f"{value * 1000:.0f} ms" if abs(value) < 10 else f"{value:.1f} s"
    if unit.endswith("/s"):
        return f"{value:,.0f}/s"
    if unit == "×":
        return f"{value:.2f}×"
    if isinstance(value, float):
        return f"{value:,.2f}"
    return f"{value:,}"


def ratio(value) -> str:
    return "–" if value is None else f"{value:.2f}×"


def met(metric: Metric) -> str:
    if not metric.target or metric.target.startswith("("):
        return ""
    return {True: "yes", False: "**no**", None: "n/a"}[metric.met]


def rows(metrics: dict[str, Metric]) -> list[list[str]]:
    out = []
    for name, m in metrics.items():
        cv = m.cv
        out.append(
            [
                name,
                fmt(m.p50, m.unit),
                fmt(m.p95, m.unit),
                fmt(m.value, m.unit),
                fmt(m.floor, m.unit),
                ratio(m.ratio),
                m.target,
                met(m),
                "–" if cv is None else f"{100 * cv:.0f}%",
            ]
        )
    return out


HEADER = ["metric", "p50", "p95", "value", "floor", "ratio", "target", "met", "cv"]


def table_text(metrics: dict[str, Metric]) -> str:
    data = [HEADER, *rows(metrics)]
    widths = [max(len(r[i]) for r in data) for i in range(len(HEADER))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in data]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def markdown(scale: str, machine: dict, metrics: dict[str, Metric], notes: list[str]) -> str:
    noise = machine.get("noise", {})
    lines = [
        f"Scale **{scale}**, {machine['date']}. Machine: {machine['cpu']}, {machine['cores']} cores, "
        f"{machine['mem']}, PostgreSQL {machine['pg version'].split(' on ')[0].replace('PostgreSQL ', '')}, "
        f"Python {machine.get('python', '?')}. Code: commit {machine.get('code', {}).get('commit')}, "
        f"sources {machine.get('code', {}).get('source_digest')}.",
        f"Noise: load average {noise.get('load_before', '?')} before, {noise.get('load_after', '?')} after; "
        f"CPU {noise.get('idle_cpu_busy_pct', '?')}% busy before the bench started anything (other users of "
        f"the machine); OS page cache {noise.get('page_cache_gib_at_end', '?')} GiB at the end for a "
        f"{noise.get('database_gib', '?')} GiB database (less means reads from disk); "
        "`cv` = coefficient of variation across repeats.",
        "",
        "| " + " | ".join(HEADER) + " |",
        "|" + "|".join("---" for _ in HEADER) + "|",
    ]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows(metrics)]
    by_note: dict[str, list[str]] = {}  # the same note for several metrics is listed once
    for name, m in metrics.items():
        if m.note:
            by_note.setdefault(m.note, []).append(f"`{name}`")
    notes_by_metric = [f"- {', '.join(names)}: {note}" for note, names in by_note.items()]
    for name, m in metrics.items():
        waits = {k: v for k, v in (m.extra.get("db_waits") or {}).items() if k != "lock_waits_in"}
        if waits:
            shown = ", ".join(f"{k} {v}" for k, v in waits.items())
            notes_by_metric.append(
                f"- `{name}`: database sessions on average (pg_stat_activity every 100 ms): {shown}"
            )
    if notes_by_metric or notes:
        lines += ["", "Notes:", *notes_by_metric, *[f"- {n}" for n in notes]]
    return "\n".join(lines) + "\n"


def write(scale: str, machine: dict, metrics: dict[str, Metric], notes: list[str], full: bool = True) -> Path:
    """latest.json/.md always; for a full run (no --only) also <scale>.json/.md and the docs."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    payload = {
        "scale": scale,
        "machine": machine,
        "metrics": {name: m.as_json() for name, m in metrics.items()},
    }
    md = markdown(scale, machine, metrics, notes)
    for stem in ("latest", scale) if full else ("latest",):  # <scale>.*: that scale's last full run
        (RESULTS / f"{stem}.json").write_text(json.dumps(payload, indent=2, default=str) + "\n")
        (RESULTS / f"{stem}.md").write_text(md)
    if full and DOCS.exists():  # docs/benchmarks.md: the latest full run, and each scale's if it has a place
        text = DOCS.read_text()
        updated = _replace_between(_replace_between(text, "latest", md), scale, md)
        if updated != text:
            DOCS.write_text(updated)
    return RESULTS / "latest.json"
