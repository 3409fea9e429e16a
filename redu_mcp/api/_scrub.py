"""Keep secrets out of text that came from elsewhere (an API error message, a proxy's page, a log line).

``scrub`` replaces each known secret (the API key, a password sent in the request) wherever it
appears, also in the forms an echo may take it in: URL-encoded, JSON-escaped, hex, base64, and any
run of ``PARTIAL`` or more of its characters (an echo of the key minus its last characters is still
the key, give or take a guess). It also masks the password of any URI with user-info
(``scheme://user:password@host``), known or not. Scrub first, shorten after: cutting a text first
could leave a prefix of a secret no longer recognisable as one.

The process also keeps a register of every secret it holds (``remember_secret``: the API key, the
pass-through keys, passwords it saw, state keys, tokens); ``scrub`` always removes those too, and
``ScrubbingFilter`` applies it to every log record, so no handler it sits on writes one.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import threading
from collections import Counter, OrderedDict
from collections.abc import Iterable
from typing import Final
from urllib.parse import quote, quote_plus

REDACTED: Final = "[REDACTED]"
#: ``scheme://user:password@`` with the password part captured.
_URI_PASSWORD = re.compile(r"(?P<head>\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s:/@]*:)(?P<password>[^\s/@]+)@")
_SHORTEST_SECRET = 4  # below this a "secret" would redact ordinary words
#: A run of this many characters of a secret counts as an echo of it (the 12-character prefix of a
#: random key is as good as the key to anyone who can try the rest).
PARTIAL: Final = 12
#: Secrets the process registers hold at once (the oldest are forgotten first): its own secrets and
#: the passwords it saw, and, apart, the callers' keys (anyone can present keys; they must not push
#: a password out of the register).
REGISTER_LIMIT: Final = 16384
CALLER_KEYS_LIMIT: Final = 2048


class SecretSet:
    """Secrets, with the exact forms and the ``PARTIAL``-character windows that betray each one."""

    def __init__(self, limit: int | None = None, *, all_encodings: bool = True) -> None:
        self._limit = limit
        self._all_encodings = all_encodings
        self._entries: OrderedDict[str, tuple[frozenset[str], frozenset[str]]] = OrderedDict()
        self._windows: Counter[str] = Counter()
        self._exact: Counter[str] = Counter()
        self._lock = threading.Lock()

    def add(self, secret: str | None) -> None:
        if not secret or len(secret) < _SHORTEST_SECRET:
            return
        with self._lock:
            if secret in self._entries:
                self._entries.move_to_end(secret)
                return
            forms = _encodings(secret) if self._all_encodings else _text_forms(secret)
            exact = frozenset(form for form in forms if len(form) < PARTIAL or len(secret) < PARTIAL)
            windows = frozenset(
                form[i : i + PARTIAL] for form in forms if len(form) >= PARTIAL for i in range(len(form) - PARTIAL + 1)
            )
            self._entries[secret] = (exact, windows)
            self._exact.update(exact)
            self._windows.update(windows)
            while self._limit is not None and len(self._entries) > self._limit:
                _, (old_exact, old_windows) = self._entries.popitem(last=False)
                _forget(self._exact, old_exact)
                _forget(self._windows, old_windows)

    def __bool__(self) -> bool:
        return bool(self._entries)

    def scrub(self, text: str) -> str:
        if not self._entries or not text:
            return text
        with self._lock:
            exact = sorted(self._exact, key=len, reverse=True)
            windows = self._windows
            for form in exact:
                text = text.replace(form, REDACTED)
            if len(text) < PARTIAL:
                return text
            marked = [False] * len(text)
            found = False
            for i in range(len(text) - PARTIAL + 1):
                if text[i : i + PARTIAL] in windows:
                    marked[i : i + PARTIAL] = [True] * PARTIAL
                    found = True
        if not found:
            return text
        out: list[str] = []
        for i, character in enumerate(text):
            if not marked[i]:
                out.append(character)
            elif i == 0 or not marked[i - 1]:
                out.append(REDACTED)
        return "".join(out)


def _forget(counts: Counter[str], forms: frozenset[str]) -> None:
    for form in forms:
        counts[form] -= 1
        if counts[form] <= 0:
            del counts[form]


_REGISTER = SecretSet(REGISTER_LIMIT, all_encodings=False)
_CALLER_KEYS = SecretSet(CALLER_KEYS_LIMIT, all_encodings=False)


def remember_secret(secret: str | None, *, callers_key: bool = False) -> None:
    """Add a secret this process holds to the register every ``scrub`` and log record is cleaned of
    (``callers_key``: a key a caller presented, kept apart so that many keys cannot evict a password)."""
    (_CALLER_KEYS if callers_key else _REGISTER).add(secret)


def scrub(text: str, secrets: Iterable[str | None] = (), *, limit: int | None = None) -> str:
    """``text`` without any of ``secrets`` (in any common encoding, or a run of ``PARTIAL`` of their
    characters), the register's secrets, or URI passwords; then cut to ``limit``."""
    given = SecretSet()
    for secret in secrets:
        given.add(secret)
    text = _CALLER_KEYS.scrub(_REGISTER.scrub(given.scrub(text)))
    text = _URI_PASSWORD.sub(lambda m: f"{m['head']}{REDACTED}@", text)
    if limit is not None and len(text) > limit:
        text = text[:limit] + "…"
    return text


class ScrubbingFilter(logging.Filter):
    """Cleans every record of the register's secrets (message, arguments, traceback) before a handler writes it.

    Put on a handler (not a logger): a handler's filters see the records of every logger that reaches it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not _REGISTER and not _CALLER_KEYS:
            return True
        message = record.getMessage()
        cleaned = scrub(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = scrub(record.exc_text)
        if record.stack_info:
            record.stack_info = scrub(record.stack_info)
        return True


def _text_forms(secret: str) -> set[str]:
    """How a secret appears in text: as is, URL-encoded, JSON-escaped."""
    forms = {secret, quote(secret, safe=""), quote_plus(secret, safe=""), json.dumps(secret)[1:-1]}
    return {form for form in forms if len(form) >= _SHORTEST_SECRET}


def _encodings(secret: str) -> set[str]:
    raw = secret.encode()
    forms = _text_forms(secret) | {
        json.dumps(secret, ensure_ascii=False)[1:-1],
        raw.hex(),
        raw.hex().upper(),
        base64.b64encode(raw).decode().rstrip("="),
        base64.urlsafe_b64encode(raw).decode().rstrip("="),
    }
    return {form for form in forms if len(form) >= _SHORTEST_SECRET}
