"""One exception hierarchy for everything that can go wrong talking to the Redu API.

Every error names the endpoint (method and path, never the host's credentials) and, where the API
answered, the HTTP status and the API's own ``{"error": {"code", "message"}}`` text. No error ever
carries the API key: requests are described by method and path only.
"""

from __future__ import annotations


class ReduError(Exception):
    """Base class: something went wrong between us and the Redu API."""

    #: A short hint for a model or a human about what to do next.
    hint: str = ""

    def __init__(
        self,
        message: str,
        *,
        endpoint: str = "",
        status: int | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.endpoint = endpoint
        self.status = status
        self.code = code

    def __str__(self) -> str:
        where = f"{self.endpoint}: " if self.endpoint else ""
        status = f"HTTP {self.status}" if self.status is not None else ""
        code = f" {self.code}" if self.code else ""
        head = f"{status}{code}: " if status else ""
        return f"{where}{head}{self.message}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"


class TransportError(ReduError):
    """No usable HTTP answer: connection refused or dropped, or a timeout.

    ``maybe_applied`` is True when the request was sent and may have taken effect upstream
    (a read timeout or a dropped connection after sending), which matters for creates.
    """

    hint = "The Redu API could not be reached; try again shortly."

    def __init__(self, message: str, *, endpoint: str = "", maybe_applied: bool = False) -> None:
        super().__init__(message, endpoint=endpoint)
        self.maybe_applied = maybe_applied


class ResponseFormatError(ReduError):
    """The API answered 2xx, but with a body we cannot read (not JSON, or the wrong shape)."""

    hint = "The Redu API (or a proxy in front of it) sent an unexpected response; try again later."


class APIStatusError(ReduError):
    """The API answered with an error status. Subclasses narrow it down by status.

    ``retry_after`` is the server's ``Retry-After`` advice in seconds, if it sent one (429, 503).
    """

    hint = "The Redu API rejected the request."

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class AuthenticationError(APIStatusError):
    """401: the API key is missing, wrong or revoked."""

    hint = "Check the REDU_API_KEY the server runs with (create a key in the Redu console)."


class PermissionDeniedError(APIStatusError):
    """403: the key is valid but not allowed to do this."""

    hint = "The API key lacks permission for this resource; use a key of a user who has it."


class NotFoundError(APIStatusError):
    """404: no such instance (or endpoint)."""

    hint = "It does not exist (or was deleted); list the instances to find the right id."


class ConflictError(APIStatusError):
    """409: the request clashes with the current state (e.g. a name already in use)."""

    hint = "Something with that name or in that state already exists; list instances and adjust."


class InvalidRequestError(APIStatusError):
    """400/422: the API refused the request body or parameters."""

    hint = "Fix the named field and try again (look up valid values with the list_* tools)."


class RateLimitedError(APIStatusError):
    """429: too many requests. ``retry_after`` is the server's advice in seconds, if any."""

    hint = "The Redu API is rate limiting; wait and try again."


class ServerError(APIStatusError):
    """5xx: the API failed on its side."""

    hint = "The Redu API had an internal problem; try again shortly."


class NotConfiguredError(ReduError):
    """The server has no API key and is not running against the sandbox."""

    hint = "Set REDU_API_KEY in the server's environment, or start it with --sandbox to try it out."


def error_for_status(status: int) -> type[APIStatusError]:
    """The exception class for an HTTP error status."""
    if status == 401:
        return AuthenticationError
    if status == 403:
        return PermissionDeniedError
    if status == 404:
        return NotFoundError
    if status == 409:
        return ConflictError
    if status in (400, 422):
        return InvalidRequestError
    if status == 429:
        return RateLimitedError
    if status >= 500:
        return ServerError
    return APIStatusError
