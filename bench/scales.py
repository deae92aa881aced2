"""Data sizes and time budgets per scale. Durations are seconds of load per repeat."""

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Scale:
    name: str
    leads: int
    interactions: int
    open_handoffs: int
    sdrs: int = 10
    repeats: int = 3  # repeats of the page and report metrics (--repeats overrides)
    heavy_repeats: int = 2  # repeats of ingest, freshness windows and rescore runs (--repeats overrides)
    ingest_seconds: float = 4.0  # per repeat, batch and single ingest each
    ingest_clients: int = 4  # concurrent HTTP clients for ingest
    freshness_seconds: float = 12.0  # per repeat; probes run back to back during it
    page_samples: int = 20  # board / report / floor requests per repeat
    rescore_timeout: float = 600.0  # a run that takes longer is recorded as failed
    settle_timeout: float = 300.0  # waiting for the worker to drain between metrics
    growth_from: tuple[str, ...] = ()  # smaller scales run first, for the growth ratios


SCALES = {
    "small": Scale(
        "small",
        leads=10_000,
        interactions=100_000,
        open_handoffs=100,
        ingest_seconds=3.0,
        freshness_seconds=10.0,
        page_samples=15,
    ),
    "default": Scale(
        "default",
        leads=100_000,
        interactions=1_000_000,
        open_handoffs=1_000,
        ingest_seconds=5.0,
        freshness_seconds=15.0,
        rescore_timeout=1800.0,
        growth_from=("small",),
    ),
    "100k": Scale(
        "100k",
        leads=100_000,
        interactions=1_000_000,
        open_handoffs=1_000,
        ingest_seconds=5.0,
        freshness_seconds=15.0,
        rescore_timeout=1800.0,
    ),
    "1m": Scale(
        "1m",
        leads=1_000_000,
        interactions=10_000_000,
        open_handoffs=10_000,
        ingest_seconds=8.0,
        freshness_seconds=20.0,
        rescore_timeout=7200.0,
        settle_timeout=1800.0,
        growth_from=("small", "default"),
    ),
}


def get(name: str, repeats: int | None = None) -> Scale:
    scale = SCALES[name]
    if repeats:
        scale = replace(scale, repeats=repeats, heavy_repeats=repeats)
    return scale


def data_key(scale: Scale) -> str:
    """What --keep-data compares: the same sizes mean the same data set."""
    return f"{scale.leads}/{scale.interactions}/{scale.open_handoffs}/{scale.sdrs}"
