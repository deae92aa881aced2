"""What a report hands to the page and to CSV: typed columns, headline figures and chart data.

A value is formatted in one place, here, for both renderings, so the page and its CSV always agree:

| kind       | value given               | on the page          | in CSV                |
|------------|---------------------------|----------------------|-----------------------|
| `int`      | int                       | `1,234`              | `1234`                |
| `pct`      | Fraction (0..1) or None   | `41.7%` / `—`        | `41.7` / empty        |
| `duration` | seconds (float) or None   | `45 min`, `3.2 h`, `4.1 d` / `—` | hours, `3.20` / empty |
| `money`    | Decimal or None           | `1,234.50` / `—`     | `1234.50` / empty     |
| `lift`     | Fraction or None          | `1.43×` / `—`        | `1.43` / empty        |
| `points`   | float                     | `+20.0`, `−10.0`     | `20.0`, `-10.0`       |
| `text`     | str                       | as is                | as is                 |

Rates are exact fractions (counts from the database divided here), rounded half up, so a hand-computed
answer such as 9/8 = 1.125 shows as 1.13 on every backend.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from functools import cached_property

INT, PCT, DURATION, MONEY, LIFT, POINTS, TEXT = "int", "pct", "duration", "money", "lift", "points", "text"
NUMERIC = {INT, PCT, DURATION, MONEY, LIFT, POINTS}
DASH = "—"

# What CSV headers add to a column's label, so a spreadsheet knows the unit.
CSV_UNITS = {PCT: " (%)", DURATION: " (hours)"}


def ratio(numerator, denominator) -> Fraction | None:
    """numerator ÷ denominator as an exact fraction; None when the denominator is 0 or missing."""
    if numerator is None or not denominator:
        return None
    return Fraction(numerator) / Fraction(denominator)


def rounded(value, places: int) -> Decimal:
    """Half-up rounding of an int, float, Decimal or Fraction to `places` decimals."""
    if isinstance(value, Fraction):
        exact = Decimal(value.numerator) / Decimal(value.denominator)
    else:
        exact = Decimal(str(value))
    return exact.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def humanize_seconds(seconds: float) -> str:
    """45 min · 3.2 h · 4.1 d (under a minute: < 1 min)."""
    if seconds < 60:
        return "< 1 min"
    if seconds < 3600:
        return f"{int(rounded(seconds / 60, 0))} min"
    hours = seconds / 3600
    if hours < 48:
        return f"{rounded(hours, 1)} h"
    return f"{rounded(hours / 24, 1)} d"


def display(value, kind: str) -> str:
    if kind == TEXT:
        return "" if value is None else str(value)
    if value is None:
        return DASH
    if kind == INT:
        return f"{int(value):,}"
    if kind == PCT:
        return f"{rounded(value * 100, 1)}%"
    if kind == DURATION:
        return humanize_seconds(value)
    if kind == MONEY:
        return f"{rounded(value, 2):,}"
    if kind == LIFT:
        return f"{rounded(value, 2)}×"
    if kind == POINTS:
        return f"{rounded(value, 1):+}".replace("-", "−")
    raise ValueError(f"unknown kind {kind}")


def csv_value(value, kind: str) -> str:
    if kind == TEXT:
        return "" if value is None else str(value)
    if value is None:
        return ""
    if kind == INT:
        return str(int(value))
    if kind == PCT:
        return str(rounded(value * 100, 1))
    if kind == DURATION:
        return str(rounded(value / 3600, 2))
    if kind in (MONEY, LIFT):
        return str(rounded(value, 2))
    if kind == POINTS:
        return str(rounded(value, 1))
    raise ValueError(f"unknown kind {kind}")


def chart_number(value, kind: str):
    """A value for Chart.js: percent (one decimal) or hours (two decimals); None leaves a gap."""
    if value is None:
        return None
    if kind == PCT:
        return float(rounded(value * 100, 1))
    if kind == DURATION:
        return float(rounded(value / 3600, 2))
    if kind in (MONEY, LIFT):
        return float(rounded(value, 2))
    return value


@dataclass(frozen=True)
class Cell:
    value: object
    kind: str

    @property
    def display(self) -> str:
        return display(self.value, self.kind)

    @property
    def csv(self) -> str:
        return csv_value(self.value, self.kind)

    @property
    def numeric(self) -> bool:
        return self.kind in NUMERIC


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    kind: str = INT
    help: str = ""  # the definition, shown as the header's tooltip

    @property
    def csv_label(self) -> str:
        return self.label + CSV_UNITS.get(self.kind, "")


@dataclass
class Row:
    cells: list[Cell]
    flag: str = ""  # e.g. "small-sample": a CSS hook for rows to read with care


@dataclass
class Table:
    """One table of a report: on the page and, at the same URL with ?format=csv&table=<slug>, as CSV."""

    slug: str
    title: str
    columns: list[Column]
    rows: list[dict] = field(default_factory=list)
    total: dict | None = None
    note: str = ""
    empty_text: str = "Nothing to show for these filters."
    csv_url: str = ""  # set by the view (keeps the page's filters)

    def _row(self, values: dict) -> Row:
        return Row([Cell(values.get(c.key), c.kind) for c in self.columns], values.get("_flag", ""))

    @property
    def body(self) -> list[Row]:
        return [self._row(r) for r in self.rows]

    @property
    def footer(self) -> Row | None:
        return self._row(self.total) if self.total is not None else None

    def csv_rows(self) -> list[list[str]]:
        """Header, rows, then the total row (if any): what the CSV download holds."""
        rows = [[c.csv_label for c in self.columns]]
        rows += [[cell.csv for cell in row.cells] for row in self.body]
        if self.footer is not None:
            rows.append([cell.csv for cell in self.footer.cells])
        return rows


@dataclass(frozen=True)
class Figure:
    """A headline number with its definition (the page shows it as a tooltip and in the footnotes)."""

    slug: str
    label: str
    value: object
    kind: str
    help: str
    detail: str = ""  # e.g. "6 of 9 decided MQLs"

    @property
    def cell(self) -> Cell:
        return Cell(self.value, self.kind)


def figures_table(figures: list[Figure]) -> Table:
    """The headline figures as a two-column table, so they download as CSV like any other table."""
    return Table(
        slug="summary",
        title="Summary",
        columns=[
            Column("metric", "Figure", TEXT), Column("value", "Value", TEXT), Column("unit", "Unit", TEXT)
        ],
        rows=[
            {"metric": f.label, "value": f.cell.csv, "unit": {PCT: "%", DURATION: "hours"}.get(f.kind, "")}
            for f in figures
        ],
    )


@dataclass
class Chart:
    """Data for one Chart.js chart, passed with json_script and drawn by static/js/reports.js.

    `datasets`: [{"label", "data", "type" (bar|line), "axis" (y|y1)}]; `axes`: {"y": {"title", "unit"}}.
    """

    id: str
    title: str
    type: str
    labels: list[str]
    datasets: list[dict]
    axes: dict
    caption: str = ""

    @property
    def data(self) -> dict:
        return {"type": self.type, "labels": self.labels, "datasets": self.datasets, "axes": self.axes}


@dataclass
class Result:
    """Everything one report page shows."""

    figures: list[Figure] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    charts: list[Chart] = field(default_factory=list)
    empty: bool = False
    context: dict = field(default_factory=dict)  # anything else the template needs

    @cached_property
    def summary(self) -> Table | None:
        return figures_table(self.figures) if self.figures else None

    def all_tables(self) -> list[Table]:
        return ([self.summary] if self.summary else []) + self.tables

    def table(self, slug: str) -> Table | None:
        return next((t for t in self.all_tables() if t.slug == slug), None)
