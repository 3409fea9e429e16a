"""Why a destructive call does not go ahead, as data: ``confirmation`` decides, ``wording`` words it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

RefusalReason = Literal[
    "declined",
    "cancelled",
    "unticked",
    "name_mismatch",
    "name_missing",
    "gone",
    "person_required",
    "needs_full_access",
    "page_unused",  # --confirm human: nobody approved it on its confirmation page (in time, for this call)
    "page_unavailable",  # --confirm human: the shared state confirmation pages live in cannot be reached
]

#: Why nobody could be asked: the client takes no questions, or this connection cannot carry one
#: (a 2025-11-25 client on a server without sessions: the server has no way to send it a request).
CannotAsk = Literal["client", "connection"]


@dataclass(frozen=True)
class Refusal:
    """Why a delete (or a destructive change of an instance's data) must not go ahead."""

    why: RefusalReason
    given: str | None = None
    cannot_ask: CannotAsk = "client"  # for name_missing and person_required: why nobody was asked
