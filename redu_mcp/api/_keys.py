"""What a Redu API key cannot be: an example's placeholder, or text with characters no key has.

Checked before a key is sent: an HTTP header carries ASCII only, so a key with an ellipsis (``…``)
or a curly quote would otherwise fail deep in the HTTP stack with a ``UnicodeEncodeError`` that
quotes the character and its position, and a placeholder would cost a request only to be refused.
The reasons never quote the key, nor any character of it.
"""

from __future__ import annotations

import re
from typing import Final

#: Text that examples put where the key goes (``YOUR_API_KEY``, ``paste-your-redu-api-key-here``,
#: ``<your key>``, ``…``), matched anywhere in the key, whatever the case.
_PLACEHOLDER: Final = re.compile(
    r"…|\.\.\.|your[-_ ]*(?:redu[-_ ]*)?(?:api[-_ ]*)?key|paste[-_ ]|placeholder|(?:replace|change)[-_ ]?me"
    r"|^<.*>$|^x{4,}$",
    re.IGNORECASE,
)
#: ``${NAME}``, ``${env:NAME}``, ``${input:id}``: a client that passed its variable syntax through.
_UNEXPANDED: Final = re.compile(r"^\$\{[^}]*\}$")
#: Visible ASCII: what every key is made of (``x-api-key`` is a header: no blanks, no controls).
_KEY_CHARS: Final = re.compile(r"[\x21-\x7e]+")


def api_key_problem(key: str) -> str | None:
    """Why ``key`` cannot be a Redu API key, as the end of a sentence that starts with the key's
    name ("REDU_API_KEY …"); ``None`` when it may be one. The words never quote the key."""
    if _UNEXPANDED.fullmatch(key):
        return "is a variable reference the client did not expand (it passed the ${NAME} text through as it is)"
    if _PLACEHOLDER.search(key):
        return "is the placeholder of an example, not a key"
    if not key.isascii():
        return (
            "has characters that are not plain ASCII (an ellipsis or curly quotes from an example, or a "
            "non-breaking space picked up when copying): keys are plain ASCII"
        )
    if not _KEY_CHARS.fullmatch(key):
        return "has blanks, line breaks or control characters (a trailing newline from a file, or a copied space)"
    return None
