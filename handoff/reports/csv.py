"""CSV downloads of report tables, safe to open in a spreadsheet.

A cell that starts with = + - @ (or a tab or carriage return) could be run as a formula by Excel,
LibreOffice or Google Sheets ("CSV injection"); such cells get a leading single quote, which the
spreadsheet shows as text. Plain numbers (such as -10.0) cannot be a formula and are left alone so
they stay numbers. Campaign names, reasons, rule labels and user names are the cells at risk.
"""

import csv
import re

from django.http import HttpResponse

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
PLAIN_NUMBER = re.compile(r"-?\d+(\.\d+)?")


def safe_cell(value) -> str:
    text = "" if value is None else str(value)
    if text.startswith(FORMULA_START) and not PLAIN_NUMBER.fullmatch(text):
        return "'" + text
    return text


def csv_response(rows, filename: str) -> HttpResponse:
    """rows: lists of cells, the header first. Sent as an attachment named `filename`."""
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    writer = csv.writer(response)
    for row in rows:
        writer.writerow([safe_cell(cell) for cell in row])
    return response
