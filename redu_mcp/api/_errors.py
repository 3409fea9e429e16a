"""Everything that can go wrong talking to the Redu API, as one exception tree::

    ReduError                       the endpoint (method and path: never the host, never the key)
     ├── NotConfiguredError         no API key to send
     │    └── MalformedKeyError     a key is set, but it is a placeholder or has characters no key has
     ├── TransportError             no usable answer: connect failure, timeout, dropped connection
     ├── ResponseFormatError        a 2xx whose body we cannot read
     └── APIStatusError             an error status, with the API's own code and message
          ├── AuthenticationError   401: key missing, wrong or revoked
          ├── PermissionDeniedError 403: valid key, not allowed
          ├── NotFoundError         404
          ├── ConflictError         409: e.g. the name is taken
          ├── InvalidRequestError   400, 422: the API refused the body
          ├── RateLimitedError      429
          └── ServerError           5xx

Errors are facts, not advice: what happened, where, and what the API said. They are never changed
after they are raised; the retry loop raises a copy that also carries how it gave up
(``RetryFacts``). Sentences telling a model what to do next are written by the MCP face
(``redu_mcp.server.wording``), from these fields.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Final, Literal, Self

GiveUpReason = Literal["attempts", "deadline", "retry_after"]


@dataclass(frozen=True)
class RetryFacts:
    """How a retried request ended: ``stopped_by`` says why no further attempt was made."""

    attempts: int  # requests sent, the last (failed) one included
    elapsed: float  # seconds from the first attempt until giving up
    stopped_by: GiveUpReason
    time_left: float | None  # seconds the caller's deadline still had then (None: no deadline)


class ReduError(Exception):
    """Base class: something went wrong between us and the Redu API."""

    def __init__(
        self,
        message: str,
        *,
        endpoint: str = "",
        status: int | None = None,
        code: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.endpoint = endpoint
        self.status = status
        self.code = code
        #: The API's ``Retry-After`` advice in seconds, when it sent one (429, 503).
        self.retry_after = retry_after
        #: Set on the copy the retry loop raises when it gives up after retrying.
        self.retry: RetryFacts | None = None

    def after_retrying(self, facts: RetryFacts) -> Self:
        """A copy of this error that also says how retrying it ended (the original stays as it was)."""
        twin = copy.copy(self)
        twin.retry = facts
        return twin

    def __str__(self) -> str:
        where = f"{self.endpoint}: " if self.endpoint else ""
        code = f" {self.code}" if self.code else ""
        head = f"HTTP {self.status}{code}: " if self.status is not None else ""
        tail = ""
        if self.retry is not None and self.retry.attempts > 1:
            tail = f" (gave up after {self.retry.attempts} attempts in {self.retry.elapsed:.1f} s)"
        return f"{where}{head}{self.message}{tail}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"


class NotConfiguredError(ReduError):
    """There is no API key to send (none configured, or none came with this request)."""


class MalformedKeyError(NotConfiguredError):
    """An API key is set, but it cannot be one: an example's placeholder, or characters no key has
    (non-ASCII, blanks, control characters). Raised before anything is sent; never quotes the key."""


class TransportError(ReduError):
    """No usable HTTP answer: connection refused or dropped, or a timeout.

    ``maybe_applied`` is True when the request was sent and may have taken effect upstream (a read
    timeout, or a connection dropped after sending), which matters for creates.
    """

    def __init__(self, message: str, *, endpoint: str = "", maybe_applied: bool = False) -> None:
        super().__init__(message, endpoint=endpoint)
        self.maybe_applied = maybe_applied


class ResponseFormatError(ReduError):
    """The API answered, but with a body we cannot read (not JSON, or the wrong shape)."""


class APIStatusError(ReduError):
    """The API answered with an error status. Subclasses narrow it down by status."""


class AuthenticationError(APIStatusError):
    """401: the API key is missing, wrong or revoked."""


class PermissionDeniedError(APIStatusError):
    """403: the key is valid but not allowed to do this."""


class NotFoundError(APIStatusError):
    """404: no such instance (or endpoint)."""


class ConflictError(APIStatusError):
    """409: the request clashes with the current state (e.g. a name already in use)."""


class InvalidRequestError(APIStatusError):
    """400/422: the API refused the request body or parameters."""


class RateLimitedError(APIStatusError):
    """429: too many requests."""


class ServerError(APIStatusError):
    """5xx: the API failed on its side."""


#: Every class of the tree above, by name: what a snapshot shared between replicas may name.
ERROR_CLASSES: Final[dict[str, type[ReduError]]] = {
    cls.__name__: cls
    for cls in (
        ReduError,
        NotConfiguredError,
        MalformedKeyError,
        TransportError,
        ResponseFormatError,
        APIStatusError,
        AuthenticationError,
        PermissionDeniedError,
        NotFoundError,
        ConflictError,
        InvalidRequestError,
        RateLimitedError,
        ServerError,
    )
}


def error_for_status(status: int) -> type[APIStatusError]:
    """The exception class for an HTTP error status."""
    by_status: dict[int, type[APIStatusError]] = {
        400: InvalidRequestError,
        401: AuthenticationError,
        403: PermissionDeniedError,
        404: NotFoundError,
        409: ConflictError,
        422: InvalidRequestError,
        429: RateLimitedError,
    }
    if status in by_status:
        return by_status[status]
    return ServerError if status >= 500 else APIStatusError
