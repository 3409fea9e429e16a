"""Redis replies as JSON, within caps.

Bulk strings become text when they are valid UTF-8, else ``{"$bytes_base64": "…"}``; maps become
objects when every key is text (else lists of ``[key, value]`` pairs); sets and arrays become
lists; integers beyond JSON's exact range and non-finite doubles become strings; nil is null; an
error inside a reply becomes ``{"$error": {"code", "message"}}``. Every marker is an object whose
one key starts with ``$``, and a map with such a key is shown as pairs, so markers are never
ambiguous with data.

Caps: the top level shows at most ``max_elements`` items (a flat list of pairs is cut between
pairs) and about ``max_total_chars`` characters; a top-level string is cut at ``max_total_chars``
on a character boundary. Inside, a string is cut at ``max_value_chars`` (``{"$cut": …}``) and a
list or map at ``max_elements`` (a last ``{"$more": n}`` item, or a ``"$more"`` key). What the top
level dropped is counted so the caller can say what to call next.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeAlias

JsonValue: TypeAlias = bool | int | float | str | list["JsonValue"] | dict[str, "JsonValue"] | None

_EXACT = 2**53 - 1  # integers JSON readers keep exactly
_MARKER_COST = 24  # characters a marker's wrapping adds, roughly


@dataclass(frozen=True)
class RedisCaps:
    max_elements: int = 100  # top-level items shown, and items of any list or map inside
    max_value_chars: int = 2_000  # one string inside a list or map
    max_total_chars: int = 20_000  # the whole result, about (JSON characters); a top-level string: this many bytes

    def __post_init__(self) -> None:
        if min(self.max_elements, self.max_value_chars, self.max_total_chars) < 1:
            raise ValueError("caps must be positive")


@dataclass(frozen=True)
class Rendered:
    """A reply as JSON, and what the caps left out of it."""

    value: JsonValue
    total: int | None = None  # top-level items (a list or map) or bytes (a string) in the reply
    shown: int | None = None  # … of which shown; both None for other replies
    cut_inside: int = 0  # strings, lists and maps inside the value that were shortened

    @property
    def truncated(self) -> bool:
        return self.cut_inside > 0 or (self.total is not None and self.shown is not None and self.shown < self.total)


def error_parts(error: BaseException) -> tuple[str, str]:
    """A Redis error reply as (prefix, message), e.g. ("WRONGTYPE", "Operation against a key …")."""
    text = str(error)
    code = getattr(error, "status_code", None)  # redis-py strips the prefixes it knows and keeps them here
    if isinstance(code, str) and code:
        return code, text
    head, _, rest = text.partition(" ")
    if head.isalpha() and head.isupper() and rest:
        return head, rest
    return "ERR", text


def bytes_marker(raw: bytes) -> dict[str, JsonValue]:
    return {"$bytes_base64": base64.b64encode(raw).decode("ascii")}


def cut_string(raw: bytes, limit: int) -> tuple[JsonValue, int]:
    """``raw`` shown in at most ``limit`` characters: (text or bytes marker, bytes shown).

    Text is cut on a character boundary so the bytes shown are an exact prefix (GETRANGE goes on
    from there); bytes that are not UTF-8 are shown base64-encoded, whose 4 characters hold 3 bytes.
    """
    head = raw[:limit]
    try:
        return head.decode("utf-8"), len(head)
    except UnicodeDecodeError as exc:
        # A character split at the end (by the cut, or by the range asked for) is left for the next call.
        if exc.reason == "unexpected end of data" and exc.start > 0 and exc.start >= len(head) - 3:
            return head[: exc.start].decode("utf-8"), exc.start
    shown = raw[: max(3, (limit // 4) * 3)]
    return bytes_marker(shown), len(shown)


class _Renderer:
    def __init__(self, caps: RedisCaps) -> None:
        self.caps = caps
        self.budget = caps.max_total_chars
        self.cut = 0

    def value(self, item: object) -> JsonValue:
        """Any value inside the reply; spends the budget, and stops spending once it is gone."""
        if isinstance(item, bytes | bytearray):
            raw = bytes(item)
            limit = max(1, min(self.caps.max_value_chars, self.budget))
            shown, count = cut_string(raw, limit)
            self.budget -= (len(shown) if isinstance(shown, str) else len(raw[:count]) * 4 // 3 + _MARKER_COST) + 2
            if count < len(raw):
                self.cut += 1
                return {"$cut": {"shown": shown, "bytes": len(raw)}}
            return shown
        if isinstance(item, str):  # redis-py never decodes here; kept for replies built by hand
            return self.value(item.encode())
        if isinstance(item, list | tuple | set | frozenset):
            return self._list(list(item))
        if isinstance(item, Mapping):
            return self._map(item)
        return self.scalar(item)

    def scalar(self, item: object) -> JsonValue:
        self.budget -= 8
        if item is None or isinstance(item, bool):
            return item
        if isinstance(item, int):
            return item if -_EXACT <= item <= _EXACT else str(item)
        if isinstance(item, float):
            return item if math.isfinite(item) else str(item)  # "inf", "-inf", "nan"
        if isinstance(item, BaseException):
            code, message = error_parts(item)
            self.budget -= len(message) + _MARKER_COST
            return {"$error": {"code": code, "message": message}}
        return str(item)  # nothing else comes out of the parser

    def _list(self, items: list[object]) -> JsonValue:
        out: list[JsonValue] = []
        for item in items:
            if len(out) >= self.caps.max_elements or self.budget <= 0:
                self.cut += 1
                out.append({"$more": len(items) - len(out)})
                break
            out.append(self.value(item))
        return out

    def _map(self, items: Mapping[object, object]) -> JsonValue:
        if not all(_plain_key(key, self.caps.max_value_chars) for key in items):
            return self._list([[key, value] for key, value in items.items()])
        out: dict[str, JsonValue] = {}
        for key, value in items.items():
            if len(out) >= self.caps.max_elements or self.budget <= 0:
                self.cut += 1
                out["$more"] = len(items) - len(out)
                break
            name, out[name] = self.entry(key, value)
        return out

    def entry(self, key: object, value: object) -> tuple[str, JsonValue]:
        """One map entry whose key passed ``_plain_key``."""
        name = key.decode("utf-8") if isinstance(key, bytes) else str(key)
        self.budget -= len(name) + 4
        return name, self.value(value)


def _plain_key(key: object, limit: int) -> bool:
    """Can ``key`` be a JSON object key without losing anything or looking like a marker?"""
    if isinstance(key, str):
        key = key.encode()
    if not isinstance(key, bytes) or len(key) > limit or key.startswith(b"$"):
        return False
    try:
        key.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def render(reply: object, caps: RedisCaps, *, pair_width: int = 1) -> Rendered:
    """``reply`` as JSON within ``caps``; ``pair_width=2`` for flat field/value lists (cut between pairs)."""
    renderer = _Renderer(caps)
    if isinstance(reply, bytes | bytearray | str):
        raw = reply.encode() if isinstance(reply, str) else bytes(reply)
        text, count = cut_string(raw, caps.max_total_chars)
        return Rendered(text, total=len(raw), shown=count)
    if isinstance(reply, Mapping) and all(_plain_key(key, caps.max_value_chars) for key in reply):
        shown_map: dict[str, JsonValue] = {}
        for key, value in reply.items():
            if len(shown_map) >= caps.max_elements or renderer.budget <= 0:
                break
            name, shown_map[name] = renderer.entry(key, value)
        return Rendered(shown_map, total=len(reply), shown=len(shown_map), cut_inside=renderer.cut)
    if isinstance(reply, Mapping):
        items: list[object] = [[key, value] for key, value in reply.items()]
    elif isinstance(reply, list | tuple | set | frozenset):
        items = list(reply)
    else:
        return Rendered(renderer.scalar(reply))
    limit = caps.max_elements - caps.max_elements % pair_width or pair_width
    shown_list: list[JsonValue] = []
    while len(shown_list) < min(len(items), limit) and renderer.budget > 0:
        start = len(shown_list)
        shown_list.extend(renderer.value(item) for item in items[start : start + pair_width])
    return Rendered(shown_list, total=len(items), shown=len(shown_list), cut_inside=renderer.cut)
