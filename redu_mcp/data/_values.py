"""PostgreSQL's text output, made into JSON values without losing anything.

Values arrive in text format and are converted by type OID, never through Python's date or decimal
types (which cannot hold ``infinity``, years before 1 or after 9999, or a numeric's exact digits):

* booleans and integers become JSON booleans and numbers; floats too, except NaN and the infinities,
  which JSON cannot hold and which stay strings;
* ``numeric`` and ``money`` stay strings (exact);
* dates and times become ISO 8601 (``2024-05-01T10:00:00+02:00``; the session's ``DateStyle`` is set
  to ISO for the call); ``infinity`` and BC dates stay as PostgreSQL writes them; intervals are ISO
  8601 durations (``IntervalStyle`` is set to ``iso_8601``);
* ``json``/``jsonb`` become the JSON they hold;
* ``bytea`` becomes ``{"$bytes_base64": "…"}``;
* arrays become JSON arrays of converted elements;
* anything else (uuid, inet, enums, ranges, geometric, extension types…) stays its text.
"""

from __future__ import annotations

import base64
import json
import math
import re
from collections.abc import Callable
from typing import Any, TypeAlias

JsonValue: TypeAlias = bool | int | float | str | list[Any] | dict[str, Any] | None

# Built-in type OIDs (fixed by PostgreSQL: src/include/catalog/pg_type.dat).
BOOL, BYTEA, INT8, INT2, INT4, OID, JSON, FLOAT4, FLOAT8 = 16, 17, 20, 21, 23, 26, 114, 700, 701
DATE, TIME, TIMESTAMP, TIMESTAMPTZ, TIMETZ, JSONB = 1082, 1083, 1114, 1184, 1266, 3802

_DATETIME = re.compile(
    r"(?P<date>\d{4,}-\d\d-\d\d) (?P<time>\d\d:\d\d:\d\d(?:\.\d+)?)(?P<zone>[+-]\d\d(?::\d\d){0,2})?"
)
_TIME = re.compile(r"(?P<time>\d\d:\d\d:\d\d(?:\.\d+)?)(?P<zone>[+-]\d\d(?::\d\d){0,2})?")


def _iso_zone(zone: str | None) -> str:
    if not zone:
        return ""
    return zone if len(zone) > 3 else zone + ":00"  # "+02" → "+02:00" (RFC 3339 wants minutes)


def iso_datetime(text: str) -> str:
    """PostgreSQL's ISO timestamp output as ISO 8601 / RFC 3339; infinity and BC dates as written."""
    match = _DATETIME.fullmatch(text)
    if match is None:  # infinity, -infinity, "… BC"
        return text
    return f"{match['date']}T{match['time']}{_iso_zone(match['zone'])}"


def _time(text: str) -> str:
    match = _TIME.fullmatch(text)
    return f"{match['time']}{_iso_zone(match['zone'])}" if match else text


def _float(text: str) -> JsonValue:
    number = float(text)
    return number if math.isfinite(number) else text


def _json(text: str) -> JsonValue:
    def big_float(literal: str) -> float | str:
        number = float(literal)
        return number if math.isfinite(number) else literal  # jsonb keeps 1e400; JSON text cannot

    try:
        value: JsonValue = json.loads(text, parse_float=big_float)
    except ValueError:
        return text
    return value


def _bytea(text: str) -> JsonValue:
    if text.startswith("\\x"):
        return {"$bytes_base64": base64.b64encode(bytes.fromhex(text[2:])).decode("ascii")}
    return text  # bytea_output = escape: the session sets hex, so this is only a fallback


_CONVERTERS: dict[int, Callable[[str], JsonValue]] = {
    BOOL: lambda text: text == "t",
    INT2: int,
    INT4: int,
    INT8: int,
    OID: int,
    FLOAT4: _float,
    FLOAT8: _float,
    JSON: _json,
    JSONB: _json,
    BYTEA: _bytea,
    DATE: lambda text: text,  # ISO already (DateStyle ISO); infinity and BC stay as written
    TIMESTAMP: iso_datetime,
    TIMESTAMPTZ: iso_datetime,
    TIME: _time,
    TIMETZ: _time,
}


def convert(text: str | None, oid: int, element: tuple[int, str] | None = None) -> JsonValue:
    """One value of type ``oid``; ``element`` is (element OID, delimiter) when ``oid`` is an array."""
    if text is None:
        return None
    if element is not None:
        return parse_array(text, element[1], lambda item: convert(item, element[0]))
    converter = _CONVERTERS.get(oid)
    if converter is None:
        return text
    try:
        return converter(text)
    except ValueError:  # a value the converter did not expect: keep PostgreSQL's text
        return text


def parse_array(text: str, delimiter: str, element: Callable[[str | None], JsonValue]) -> JsonValue:
    """PostgreSQL's array output (``{1,2}``, ``{{"a b",NULL}}``, ``[0:1]={…}``) as nested lists."""
    if text.startswith("["):  # explicit bounds: the values are what follow "="
        text = text.partition("=")[2]
    position = 0

    def items() -> list[JsonValue]:
        nonlocal position
        position += 1  # past "{"
        out: list[JsonValue] = []
        while position < len(text):
            char = text[position]
            if char == "}":
                position += 1
                return out
            if char == delimiter:
                position += 1
            elif char == "{":
                out.append(items())
            elif char == '"':
                position += 1
                chars: list[str] = []
                while text[position] != '"':
                    if text[position] == "\\":
                        position += 1
                    chars.append(text[position])
                    position += 1
                position += 1
                out.append(element("".join(chars)))
            else:
                end = position
                while text[end] not in (delimiter, "}"):
                    end += 1
                raw = text[position:end].strip()
                position = end
                out.append(element(None if raw.upper() == "NULL" else raw))
        raise ValueError("unterminated array")

    if not text.startswith("{"):
        return text
    try:
        return items()
    except (ValueError, IndexError):
        return text
