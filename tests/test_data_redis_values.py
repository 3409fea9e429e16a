"""Redis replies as capped JSON, and the calls that continue a cut reply (no server needed)."""

from __future__ import annotations

import base64
import json
import subprocess
import sys

from hypothesis import given
from hypothesis import strategies as st

from redu_mcp.data import RedisCaps, RedisNeedsConfirmation, flush_needing_confirmation
from redu_mcp.data._redis_paging import list_continuation, scan_continuation, string_continuation
from redu_mcp.data._redis_values import cut_string, error_parts, render


def redis_range(length: int, start: int, stop: int) -> range:
    """The indexes LRANGE/GETRANGE/ZRANGE return for ``start stop`` on ``length`` items."""
    start = max(start + length if start < 0 else start, 0)
    stop = min(stop + length if stop < 0 else stop, length - 1)
    return range(start, stop + 1) if start <= stop else range(0)


@given(
    length=st.integers(0, 60),
    start=st.integers(-80, 80),
    stop=st.integers(-80, 80),
    cap=st.integers(1, 10),
)
def test_lrange_pages_with_the_continuation_return_every_item_once(length: int, start: int, stop: int, cap: int):
    items = list(range(length))
    seen: list[int] = []
    arguments: list[str | bytes] = ["k", str(start), str(stop)]
    for _ in range(100):
        reply = [items[i] for i in redis_range(length, int(arguments[1]), int(arguments[2]))]
        shown = min(cap, len(reply))
        seen += reply[:shown]
        if shown == len(reply):
            break
        more = list_continuation("lrange", arguments, reply, shown, 1)
        if more.next_call is None:  # only a negative start with a positive stop has none
            assert start < 0 <= stop
            return
        assert more.next_call[0] == "LRANGE"
        arguments = [str(part) for part in more.next_call[1:]]
    assert seen == [items[i] for i in redis_range(length, start, stop)]


def getrange(value: bytes, start: int, stop: int) -> bytes:
    return bytes(value[i] for i in redis_range(len(value), start, stop))


def test_a_string_cut_on_a_character_boundary_continues_with_getrange_byte_exact():
    value = ("aé€😀" * 50).encode()
    first, count = cut_string(value, 10)
    assert isinstance(first, str) and first.encode() == value[:count] and 0 < count <= 10
    pieces, offset = [value[:count]], count
    more = string_continuation("get", ["k"], len(value), count, 10)
    while more.next_call is not None:  # the agent follows each call offered, then asks the next chunk itself
        assert more.next_call[:2] == ("GETRANGE", "k")
        start, stop = int(more.next_call[2]), int(more.next_call[3])  # type: ignore[arg-type]
        assert start == offset
        reply = getrange(value, start, stop)
        shown, count = cut_string(reply, 10)
        assert isinstance(shown, str) and shown.encode() == reply[:count]
        pieces.append(reply[:count])
        offset += count
        if count < len(reply):
            more = string_continuation("getrange", ["k", str(start), str(stop)], len(reply), count, 10)
        elif offset < len(value):
            more = string_continuation("get", ["k"], len(value), offset, 10)
        else:
            break
    assert b"".join(pieces) == value


def test_bytes_that_are_not_utf8_are_marked_and_base64_encoded():
    """Judged on what is shown: a cut binary value whose first bytes happen to be UTF-8 shows them as text."""
    raw = bytes(range(255, -1, -1))
    rendered = render(raw, RedisCaps(max_total_chars=40))
    assert isinstance(rendered.value, dict)
    decoded = base64.b64decode(rendered.value["$bytes_base64"])  # type: ignore[arg-type]
    assert raw.startswith(decoded) and rendered.shown == len(decoded) == 30 and rendered.total == 256


def test_maps_are_objects_unless_a_key_is_binary_or_looks_like_a_marker():
    assert render({b"a": b"1", b"b": 2}, RedisCaps()).value == {"a": "1", "b": 2}
    assert render({b"$bytes_base64": b"x"}, RedisCaps()).value == [["$bytes_base64", "x"]]
    assert render({b"\xff": b"x"}, RedisCaps()).value == [[{"$bytes_base64": "/w=="}, "x"]]


def test_numbers_booleans_nil_and_errors_become_json():
    class Err(Exception):
        status_code = "WRONGTYPE"

    value = render([2**53 - 1, 2**64, float("inf"), float("-inf"), 1.5, True, None, Err("Operation")], RedisCaps())
    assert value.value == [
        2**53 - 1,
        str(2**64),
        "inf",
        "-inf",
        1.5,
        True,
        None,
        {"$error": {"code": "WRONGTYPE", "message": "Operation"}},
    ]
    json.dumps(value.value, allow_nan=False)  # valid JSON, no NaN/Infinity literals
    assert error_parts(Exception("NOPERM this user has no permissions")) == ("NOPERM", "this user has no permissions")
    assert error_parts(Exception("something odd")) == ("ERR", "something odd")


def test_inside_a_reply_long_strings_and_long_lists_are_marked_cut():
    caps = RedisCaps(max_elements=3, max_value_chars=5)
    rendered = render([b"0123456789", [b"a", b"b", b"c", b"d", b"e"]], caps)
    assert rendered.value == [{"$cut": {"shown": "01234", "bytes": 10}}, ["a", "b", "c", {"$more": 2}]]
    assert rendered.cut_inside == 2 and rendered.truncated and rendered.shown == rendered.total == 2


def test_flat_pairs_are_cut_between_pairs_and_the_total_characters_are_capped():
    rendered = render([b"f1", b"v1", b"f2", b"v2", b"f3", b"v3"], RedisCaps(max_elements=5), pair_width=2)
    assert rendered.value == ["f1", "v1", "f2", "v2"] and rendered.shown == 4
    many = render([b"x" * 100] * 1000, RedisCaps(max_elements=1000, max_total_chars=1_000))
    assert many.shown is not None and many.shown < 15 and len(json.dumps(many.value)) < 1_300


def test_continuations_by_limit_after_an_id_with_the_names_not_shown_and_scan_pages():
    by_score = list_continuation("zrangebyscore", ["z", "-inf", "+inf", "LIMIT", "10", "50"], [b"m"] * 50, 20, 1)
    assert by_score.next_call == ("ZRANGEBYSCORE", "z", "-inf", "+inf", "LIMIT", "30", "30")
    zrange = list_continuation("zrange", ["z", "0", "10", "BYSCORE", "WITHSCORES"], [b"m", b"1"] * 8, 6, 2)
    assert zrange.next_call == ("ZRANGE", "z", "0", "10", "BYSCORE", "WITHSCORES", "LIMIT", "3", "-1")
    entries = [[b"1-0", [b"f", b"v"]], [b"2-0", [b"f", b"v"]], [b"3-0", [b"f", b"v"]]]
    assert list_continuation("xrange", ["s", "-", "+", "COUNT", "3"], entries, 2, 1).next_call == (
        "XRANGE",
        "s",
        "(2-0",
        "+",
        "COUNT",
        "1",
    )
    assert list_continuation("xrevrange", ["s", "+", "-"], entries, 1, 1).next_call == ("XREVRANGE", "s", "+", "(1-0")
    assert list_continuation("mget", ["a", "b", b"\xff"], [b"1", b"2", b"3"], 1, 1).next_call == (
        "MGET",
        "b",
        {"$bytes_base64": "/w=="},
    )
    assert list_continuation("hgetall", ["h"], [b"f", b"v"] * 10, 4, 2).use_instead == "HSCAN"
    assert scan_continuation("hscan", ["h", "0", "COUNT", "500"], 100, 2).next_call == (
        "HSCAN",
        "h",
        "0",
        "COUNT",
        "50",
    )
    # A page that was already small is a collection that comes whole: no next call to offer
    assert scan_continuation("sscan", ["s", "0", "COUNT", "5"], 100, 1).next_call is None


def test_flushes_are_known_by_name_so_the_face_asks_before_anything_is_sent():
    assert flush_needing_confirmation("flushall") == RedisNeedsConfirmation("FLUSHALL", "instance")
    assert flush_needing_confirmation("FlushDB") == RedisNeedsConfirmation("FLUSHDB", "database")
    for other in ("FLUSH", "FLUSHALL ASYNC", "FLUSHALL\r\n", "DEL", ""):
        assert flush_needing_confirmation(other) is None, other


def test_importing_the_data_layer_does_not_import_redis_py():
    """Start-up time: redis-py (≈ 0.15–0.3 s) is imported on the first Redis data call."""
    code = "import sys, redu_mcp.data; print('redis' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
