"""Keep secrets out of text that came from elsewhere (an API error message, a proxy's page).

``scrub`` replaces each known secret (the API key, a password sent in the request) wherever it
appears, also in the forms an echo may take it in: URL-encoded, JSON-escaped, hex, base64. It also
masks the password of any URI with user-info (``scheme://user:password@host``), known or not.
Scrub first, shorten after: cutting a text first could leave a prefix of a secret no longer
recognisable as one.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterable
from typing import Final
from urllib.parse import quote, quote_plus

REDACTED: Final = "[REDACTED]"
#: ``scheme://user:password@`` with the password part captured.
_URI_PASSWORD = re.compile(r"(?P<head>\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s:/@]*:)(?P<password>[^\s/@]+)@")
_SHORTEST_SECRET = 4  # below this a "secret" would redact ordinary words


def scrub(text: str, secrets: Iterable[str | None] = (), *, limit: int | None = None) -> str:
    """``text`` without any of ``secrets`` (in any common encoding) or URI passwords; then cut to ``limit``."""
    for secret in secrets:
        if secret and len(secret) >= _SHORTEST_SECRET:
            for form in sorted(_encodings(secret), key=len, reverse=True):
                text = text.replace(form, REDACTED)
    text = _URI_PASSWORD.sub(lambda m: f"{m['head']}{REDACTED}@", text)
    if limit is not None and len(text) > limit:
        text = text[:limit] + "…"
    return text


def _encodings(secret: str) -> set[str]:
    raw = secret.encode()
    forms = {
        secret,
        quote(secret, safe=""),
        quote_plus(secret, safe=""),
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
        raw.hex(),
        raw.hex().upper(),
        base64.b64encode(raw).decode().rstrip("="),
        base64.urlsafe_b64encode(raw).decode().rstrip("="),
    }
    return {form for form in forms if len(form) >= _SHORTEST_SECRET}
