"""Rows as they stream in, converted and cut to what a model can read.

Three caps: rows (the caller's ``max_rows``), characters per cell and characters in all. A row is
kept whole or not at all; a cell longer than its cap becomes the first characters of its text (its
position is recorded, so the face can say which cells were cut). Collecting stops at the first row
that does not fit; whether more rows exist is known because one more than asked is read.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal

from redu_mcp.data._values import JsonValue, convert

CutReason = Literal["max_rows", "max_chars"]


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # PostgreSQL's name for it: "integer", "timestamp with time zone", "text[]", "mood"
    type_oid: int


def _json_length(value: JsonValue) -> int:
    """Characters of ``value`` as compact JSON (a string's escapes not counted: near enough for a cap)."""
    if isinstance(value, str):
        return len(value) + 2
    if value is None or isinstance(value, bool):
        return 5 if value is False else 4
    if isinstance(value, int | float):
        return len(repr(value))
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")))


def builtin_type(oid: int) -> tuple[str, tuple[int, str] | None] | None:
    """(name, (element OID, delimiter) for arrays) of a type psycopg knows without asking the server."""
    from psycopg.postgres import types

    info = types.get(oid)
    if info is None:
        return None
    if info.array_oid == oid and info.oid != oid:
        return f"{info.regtype}[]", (info.oid, info.delimiter)
    return info.regtype, None


class RowCollector:
    """Accumulates converted rows under the caps; ``full`` once no further row will be kept."""

    def __init__(self, *, max_rows: int, max_cell_chars: int, max_total_chars: int) -> None:
        self.max_rows = max_rows
        self.max_cell_chars = max_cell_chars
        self.max_total_chars = max_total_chars
        self.rows: list[tuple[JsonValue, ...]] = []
        self.cut_cells: list[tuple[int, int]] = []
        self.received = 0  # rows the server sent that were read (kept or not)
        self.cut: CutReason | None = None
        self._chars = 0
        self._types: list[tuple[int, tuple[int, str] | None]] = []

    def set_columns(self, oids: list[int]) -> None:
        self._types = []
        for oid in oids:
            known = builtin_type(oid)
            self._types.append((oid, known[1] if known else None))

    @property
    def full(self) -> bool:
        return self.cut is not None

    def add(self, texts: list[str | None]) -> None:
        """One row as the server sent it (text format); converted and kept if it fits."""
        self.received += 1
        if self.cut is not None:
            return
        if len(self.rows) >= self.max_rows:
            self.cut = "max_rows"
            return
        row: list[JsonValue] = []
        cut: list[int] = []
        length = 2  # the brackets
        for index, (text, (oid, element)) in enumerate(zip(texts, self._types, strict=True)):
            value, chars = self._cell(text, oid, element)
            row.append(value)
            if chars is None:
                cut.append(index)
                chars = _json_length(value)
            length += chars + 1
        if self._chars + length > self.max_total_chars:
            self.cut = "max_chars"
            return
        self._chars += length
        self.cut_cells += [(len(self.rows), index) for index in cut]
        self.rows.append(tuple(row))

    def _cell(self, text: str | None, oid: int, element: tuple[int, str] | None) -> tuple[JsonValue, int | None]:
        """The value and its length in characters, or the cut value and None."""
        if text is not None and len(text) > 4 * self.max_cell_chars:
            return text[: self.max_cell_chars], None  # no conversion brings this under the cap
        value = convert(text, oid, element)
        chars = _json_length(value)
        if chars <= self.max_cell_chars:
            return value, chars
        as_text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        return as_text[: self.max_cell_chars], None
