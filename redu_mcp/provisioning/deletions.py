"""What this server deleted, remembered for a while, so that a later look-up of the id can say so.

After a delete, the API answers a GET of the id with a bare 404, the same as for an id that never
existed. A model that asks about an instance it (or the user) deleted an hour ago deserves to hear
what happened: the ``DeletionRecord`` remembers, per caller, which instance was deleted, when, by
whom and how it was confirmed.

In memory only, bounded (the oldest ``MAX_REMEMBERED`` are forgotten first), and per process: a
restart or another replica forgets, and the look-up then says only that there is no such instance.
The audit trail (``--audit-log``) keeps the lasting record; it is not read back here, because it is
the operator's (rotated, possibly on stderr only) and a look-up must stay one cheap step.
"""

from __future__ import annotations

import datetime
from collections import OrderedDict
from dataclasses import dataclass
from typing import Final

#: How many deletions are remembered (a few hundred bytes each).
MAX_REMEMBERED: Final = 1000


@dataclass(frozen=True)
class Deletion:
    """One instance this server deleted."""

    kind: str  # the kind's name ("database")
    id: int
    name: str
    at: datetime.datetime  # UTC
    by: str  # the principal, as the audit trail names it ("local", "operator", "user:<id>")
    confirmed_by: str  # "the user" or "confirm_name"


class DeletionRecord:
    """The deletions of the last while, per caller (``caller``: a tag that never crosses users)."""

    def __init__(self, size: int = MAX_REMEMBERED) -> None:
        self._size = size
        self._deleted: OrderedDict[tuple[str, str, int], Deletion] = OrderedDict()

    def remember(self, caller: str, deletion: Deletion) -> None:
        key = (caller, deletion.kind, deletion.id)
        self._deleted.pop(key, None)
        self._deleted[key] = deletion
        while len(self._deleted) > self._size:
            self._deleted.popitem(last=False)

    def find(self, caller: str, kind: str, id: int) -> Deletion | None:
        """The deletion of this instance by this server for ``caller``, if remembered."""
        return self._deleted.get((caller, kind, id))
