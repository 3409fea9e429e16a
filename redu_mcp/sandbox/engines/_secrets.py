"""Passwords: how each server gets one without seeing it in the clear, and keeping them out of output.

A password never reaches argv, logs or exceptions. PostgreSQL gets a SCRAM-SHA-256 verifier
computed here (with PostgreSQL's own SASLprep), so the plaintext never reaches the server, its
logs or single-user mode's output; Redis gets its ``requirepass`` in a configuration on stdin,
every byte escaped. Every spelling of a secret that could show up in an engine's output is
redacted from whatever we return.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import stringprep
import unicodedata
from collections.abc import Iterable

_REDACTED = "********"


def _secret_forms(password: str, *derived: str) -> tuple[str, ...]:
    """Every spelling of a secret that could show up in output, for redaction."""
    forms = [password, _redis_quote(password)[1:-1], *derived]
    return tuple(form for form in forms if form)


def _redact(text: str, secrets: Iterable[str]) -> str:
    for form in sorted(secrets, key=len, reverse=True):
        if form:
            text = text.replace(form, _REDACTED)
    return text


def _redis_quote(value: str) -> str:
    """A redis.conf string: every byte \\x-escaped, so no value can break the line."""
    return '"' + "".join(f"\\x{b:02x}" for b in value.encode()) + '"'


_SASL_PROHIBITED = (
    stringprep.in_table_c12,
    stringprep.in_table_c21_c22,
    stringprep.in_table_c3,
    stringprep.in_table_c4,
    stringprep.in_table_c5,
    stringprep.in_table_c6,
    stringprep.in_table_c7,
    stringprep.in_table_c8,
    stringprep.in_table_c9,
    stringprep.in_table_a1,
)


def _saslprep(password: str) -> str:
    """SASLprep (RFC 4013) exactly as PostgreSQL's pg_saslprep() applies it to SCRAM passwords.

    Like PostgreSQL (and libpq, which the clients use), a password that SASLprep prohibits is
    used as it is, and the checks look at the mapped string before normalization.
    """
    if password.isascii():
        return password
    mapped = []
    for char in password:
        if stringprep.in_table_c12(char):
            mapped.append(" ")
        elif not stringprep.in_table_b1(char):
            mapped.append(char)
    if not mapped:
        return password
    if any(check(char) for char in mapped for check in _SASL_PROHIBITED):
        return password
    if any(stringprep.in_table_d1(char) for char in mapped) and (
        any(stringprep.in_table_d2(char) for char in mapped)
        or not stringprep.in_table_d1(mapped[0])
        or not stringprep.in_table_d1(mapped[-1])
    ):
        return password
    return unicodedata.normalize("NFKC", "".join(mapped))


def _scram_verifier(password: str, *, salt: bytes | None = None, iterations: int = 4096) -> str:
    """The SCRAM-SHA-256 secret PostgreSQL would store for ``password`` (rolpassword format)."""
    salt = salt if salt is not None else os.urandom(16)
    salted = hashlib.pbkdf2_hmac("sha256", _saslprep(password).encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode()

    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"
