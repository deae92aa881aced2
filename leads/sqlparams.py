"""Lists as one statement parameter, built cheaply.

psycopg adapts a Python list element by element in Python (about 1 ms per 1,000 values): for the
id and key lists of ingest and rescoring that was a tenth of a request's Python time. An array
literal (integers) or a JSON array (text) is built by C code and read by the database."""

from __future__ import annotations

import json
from collections.abc import Iterable


def bigint_array(values: Iterable[int]) -> str:
    """The value of a ``%s::bigint[]`` parameter."""
    return "{" + ",".join(map(str, map(int, values))) + "}"


def json_array(values: Iterable[str]) -> str:
    """The value of a ``jsonb_array_elements_text(%s::jsonb)`` parameter: text of any content
    (commas, quotes, braces) needs no escaping of ours."""
    return json.dumps(list(values), ensure_ascii=False, separators=(",", ":"))
