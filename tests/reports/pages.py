"""Read a report page and its CSV back into plain Python, for assertions."""

import csv
import io
import json
import re
from html.parser import HTMLParser


class _ReportParser(HTMLParser):
    """Collects figures (dd[data-figure]) and tables (table[data-table]) with each cell's
    data-value (what the CSV holds) and its text (what the page shows)."""

    def __init__(self):
        super().__init__()
        self.figures: dict[str, dict] = {}
        self.tables: dict[str, list[list[dict]]] = {}
        self._table = None
        self._row = None
        self._cell = None
        self._figure = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "dd" and "data-figure" in attrs:
            self._figure = {"value": attrs["data-value"], "text": ""}
            self.figures[attrs["data-figure"]] = self._figure
        elif tag == "table" and "data-table" in attrs:
            self._table = self.tables.setdefault(attrs["data-table"], [])
        elif self._table is not None and tag == "tr":
            self._row = []
            self._table.append(self._row)
        elif self._row is not None and tag in ("th", "td"):
            self._cell = {"value": attrs.get("data-value"), "text": ""}
            self._row.append(self._cell)

    def handle_endtag(self, tag):
        if tag == "dd":
            self._figure = None
        elif tag in ("th", "td"):
            self._cell = None
        elif tag == "tr":
            self._row = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data):
        if self._figure is not None:
            self._figure["text"] += data
        if self._cell is not None:
            self._cell["text"] += data


class Page:
    def __init__(self, html: str):
        self.html = html
        parser = _ReportParser()
        parser.feed(html)
        self.figures = {k: v for k, v in parser.figures.items()}
        self._tables = parser.tables

    def figure(self, slug: str) -> str:
        """The figure as shown, e.g. "66.7%"."""
        return self.figures[slug]["text"].strip()

    def rows(self, table: str) -> list[list[str]]:
        """The table as shown: header row, then rows (text of each cell)."""
        return [[c["text"].strip() for c in row] for row in self._tables[table]]

    def values(self, table: str) -> list[list[str]]:
        """The body and footer rows as data-value (what the CSV should hold), without the header."""
        return [[c["value"] for c in row] for row in self._tables[table][1:]]

    def row(self, table: str, first: str) -> dict[str, str]:
        """One row, by its first cell's text, as {header: shown text}."""
        header, *rows = self.rows(table)
        for row in rows:
            if row[0] == first:
                return dict(zip(header, row, strict=True))
        raise KeyError(f"no row {first!r} in {table}: {[r[0] for r in rows]}")

    def chart(self, chart_id: str) -> dict:
        """The JSON a chart is drawn from (json_script), parsed."""
        found = re.search(rf'<script id="{re.escape(chart_id)}" type="application/json">(.*?)</script>', self.html, re.S)
        assert found, f"no chart data {chart_id}"
        assert f'data-chart="{chart_id}"' in self.html, f"no canvas for {chart_id}"
        return json.loads(found.group(1))

    def has_table(self, table: str) -> bool:
        return table in self._tables


def get_page(client, path: str, **params) -> Page:
    response = client.get(path, params)
    assert response.status_code == 200, response.status_code
    return Page(response.content.decode())


def get_csv(client, path: str, **params) -> list[list[str]]:
    response = client.get(path, {**params, "format": "csv"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    return list(csv.reader(io.StringIO(response.content.decode())))


def csv_dicts(rows: list[list[str]]) -> dict[str, dict[str, str]]:
    """CSV rows keyed by their first cell, each as {header: cell}."""
    header, *body = rows
    return {row[0]: dict(zip(header, row, strict=True)) for row in body}
