"""Figures: statistics over samples and repeats, the issue's targets, and the Metric record.

`ratio` is always the figure's cost relative to its floor (≥ 1 means slower than the floor):
time / floor time for durations, floor rate / rate for throughputs. So "≥ 1/4 of the raw COPY rate"
is ratio ≤ 4, and "≤ 1.5× the SQL floor" is ratio ≤ 1.5.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field


def percentile(values: list[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (q in 0-100)."""
    data = sorted(v for v in values if v is not None)
    if not data:
        return None
    if len(data) == 1:
        return data[0]
    k = (len(data) - 1) * q / 100.0
    lo, hi = math.floor(k), math.ceil(k)
    return data[lo] + (data[hi] - data[lo]) * (k - lo)


def cv(values: list[float]) -> float | None:
    """Coefficient of variation (stdev / mean) across repeats: the run-to-run noise."""
    data = [v for v in values if v is not None]
    if len(data) < 2 or not statistics.fmean(data):
        return None
    return statistics.stdev(data) / abs(statistics.fmean(data))


@dataclass
class Target:
    text: str  # as the issue states it
    field: str  # which figure it is checked on: "value", "p95", "ratio"
    op: str  # "<=" or ">="
    limit: float
    also: Target | None = None  # a second condition (e.g. the ratio to the floor)

    def check(self, metric: Metric) -> bool | None:
        got = getattr(metric, self.field)
        if got is None:
            return None
        ok = got <= self.limit if self.op == "<=" else got >= self.limit
        return ok and (self.also.check(metric) is not False if self.also else True)


# The targets (stated for a 2-core machine at SCALE=1m); checked at every scale as given.
TARGETS = {
    "freshness": Target("p95 ≤ 1 s at 1,000 interactions/s", "p95", "<=", 1.0),
    "ingest_batch": Target(
        "≥ 10,000 interactions/s and ≥ 1/4 of raw COPY",
        "value",
        ">=",
        10_000,
        also=Target("", "ratio", "<=", 4.0),
    ),
    "rescore_full": Target(
        "≤ 60 s at 1M leads and ≤ 1.5× the SQL floor",
        "value",
        "<=",
        60.0,
        also=Target("", "ratio", "<=", 1.5),
    ),
    "rescore_single_rule": Target("≤ 10 s at 1M leads", "value", "<=", 10.0),
    "board": Target("p95 ≤ 100 ms at 1M leads / 10k open handoffs", "p95", "<=", 0.100),
    "report": Target("p95 ≤ 500 ms at 1M leads", "p95", "<=", 0.500),
    # growth: cost at the larger scale / (cost at the smaller × size ratio); 1 = linear.
    "growth_linear": Target("no worse than linear (≤ 1.2 with noise)", "value", "<=", 1.2),
    "growth_flat": Target("flat (≤ 1.5× with noise)", "value", "<=", 1.5),
}


@dataclass
class Metric:
    name: str
    unit: str
    value: float | None = None
    p50: float | None = None
    p95: float | None = None
    p99: float | None = None
    floor: float | None = None
    ratio: float | None = None
    target: str = ""
    met: bool | None = None
    repeats: list[float] = field(default_factory=list)  # one summary figure per repeat
    floor_repeats: list[float] = field(default_factory=list)
    n: int = 0  # samples behind p50/p95
    note: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def cv(self) -> float | None:
        return cv(self.repeats)

    def judge(self, target: Target | None) -> Metric:
        if target is not None:
            self.target = target.text
            self.met = target.check(self)
        return self

    def as_json(self) -> dict:
        def r(x):
            return None if x is None else (round(x, 6) if isinstance(x, float) else x)

        out = {
            "p50": r(self.p50),
            "p95": r(self.p95),
            "value": r(self.value),
            "floor": r(self.floor),
            "ratio": r(self.ratio),
            "unit": self.unit,
            "target": self.target,
            # null for figures without a target (information), else whether the target is met
            "met": None if not self.target or self.target.startswith("(") else bool(self.met),
        }
        if self.p99 is not None:
            out["p99"] = r(self.p99)
        out["cv"] = r(self.cv)
        out["n"] = self.n
        out["repeats"] = [r(x) for x in self.repeats]
        if self.note:
            out["note"] = self.note
        if self.extra:
            out["extra"] = self.extra
        return out


def latency(
    name: str, samples: list[float], repeat_medians: list[float], *, floor_samples=None, unit: str = "s"
) -> Metric:
    """A latency figure: p50/p95/p99 over all samples; value = p95; floor = the floor's p95."""
    m = Metric(name, unit, n=len(samples), repeats=repeat_medians)
    m.p50, m.p95, m.p99 = percentile(samples, 50), percentile(samples, 95), percentile(samples, 99)
    m.value = m.p95
    if floor_samples:
        m.floor = percentile(floor_samples, 95)
        m.extra["floor_p50"] = percentile(floor_samples, 50)
        m.ratio = m.value / m.floor if m.value is not None and m.floor else None
    return m


def throughput(name: str, rates: list[float], floor_rates: list[float], unit: str) -> Metric:
    """A rate per repeat: value = median rate, p95 = the 5th-percentile rate (the slow tail, so that
    p95 reads as "95% of repeats were at least this fast"); ratio = floor rate / rate."""
    m = Metric(name, unit, n=len(rates), repeats=rates, floor_repeats=floor_rates)
    m.p50 = m.value = percentile(rates, 50)
    m.p95 = percentile(rates, 5)
    m.floor = percentile(floor_rates, 50) if floor_rates else None
    m.ratio = m.floor / m.value if m.floor and m.value else None
    return m


def duration(name: str, seconds: list[float], floor_seconds: list[float]) -> Metric:
    """A duration per repeat (rescoring): value = median, p95 over repeats; ratio = time / floor."""
    m = Metric(name, "s", n=len(seconds), repeats=seconds, floor_repeats=floor_seconds)
    m.p50 = m.value = percentile(seconds, 50)
    m.p95 = percentile(seconds, 95)
    m.floor = percentile(floor_seconds, 50) if floor_seconds else None
    m.ratio = m.value / m.floor if m.value is not None and m.floor else None
    return m
