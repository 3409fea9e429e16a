"""What a verifier may decide about a bearer token, and the interface every verifier implements.

A verifier only decides (``_verifiers``); ``Authenticate`` (``_auth``) turns the decision into an
answer: ``Accepted`` lets the request in as its principal, ``Rejected`` is a 401, ``Throttled`` a 429
and ``Unavailable`` a 503. With the vocabulary in a module of its own, the layer does not depend on
how a token is checked, and a check can say more than yes or no.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

from mcp.server.auth.provider import AccessToken

from redu_mcp.server.http._limits import Refusal


@dataclass(frozen=True)
class Accepted:
    access: AccessToken
    principal: str


@dataclass(frozen=True)
class Rejected:
    """The token is not one we accept (malformed, wrong, unknown to the API)."""


@dataclass(frozen=True)
class Throttled:
    refusal: Refusal


@dataclass(frozen=True)
class Unavailable:
    """The API could not say whether the key is good (outage, timeout, its own rate limit)."""

    retry_after: int


Verdict = Accepted | Rejected | Throttled | Unavailable


class BearerVerifier(ABC):
    @abstractmethod
    async def check(self, token: str, client: str) -> Verdict:
        """Decide on a well-formed ``token`` presented by ``client`` (its address)."""
