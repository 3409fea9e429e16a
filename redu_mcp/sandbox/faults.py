"""Fault injection: make the sandbox fail the way a real cloud control plane does.

A ``Fault`` matches requests by method and path and, for the next ``times`` matching requests
(after letting the first ``after`` of them through), answers with an error status, a delay, a
dropped connection, a hang until the client times out, or a malformed body. With ``apply=True``
the request is carried out first and then fails, which is the case that makes a create's outcome
uncertain.
"""

from __future__ import annotations

import fnmatch
import threading
from dataclasses import asdict, dataclass
from typing import Any, Literal

MalformedBody = Literal["html", "not-json", "wrong-shape", "empty"]


class DroppedConnection(Exception):
    """Raised inside the app to cut the connection without a complete answer."""


@dataclass
class Fault:
    method: str | None = None  # None matches any method
    path: str = "*"  # shell-style pattern on the request path, e.g. "/v1/databases*"
    times: int = 1  # how many matching requests it affects; -1 means every one
    status: int | None = None  # answer with this status and the API's error envelope
    retry_after: str | None = None  # sent as Retry-After with the status
    message: str | None = None  # the error envelope's message (default: "sandbox fault: HTTP <status>")
    delay: float = 0.0  # seconds to wait before answering (or before failing)
    drop: bool = False  # cut the connection without an answer
    timeout: bool = False  # never answer: the client's read timeout fires
    body: MalformedBody | None = None  # answer with a malformed body (status: `status` or 200)
    apply: bool = False  # carry the request out first, then fail as above
    after: int = 0  # let this many matching requests through untouched first (e.g. to hit a second GET)

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method.upper() == method.upper()) and fnmatch.fnmatchcase(path, self.path)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class FaultPlan:
    """The faults waiting to happen, consumed in the order they were added."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._lock = threading.Lock()  # the standalone sandbox may be driven from another thread

    def add(self, fault: Fault | None = None, /, **fields: Any) -> Fault:
        fault = fault or Fault(**fields)
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def pending(self) -> list[Fault]:
        with self._lock:
            return list(self._faults)

    def take(self, method: str, path: str) -> Fault | None:
        """The first fault matching this request, with one use consumed."""
        with self._lock:
            for fault in self._faults:
                if fault.matches(method, path):
                    if fault.after > 0:  # not yet: this request passes (later faults may still match it)
                        fault.after -= 1
                        continue
                    if fault.times > 0:
                        fault.times -= 1
                        if fault.times == 0:
                            self._faults.remove(fault)
                    return fault
        return None
