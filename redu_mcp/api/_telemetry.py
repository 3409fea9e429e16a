"""OpenTelemetry for the API library: one CLIENT span per HTTP attempt, and metrics.

Only the OpenTelemetry *API* is used (``opentelemetry-api``, a dependency of ``mcp``): everything
here is a no-op until the application installs an SDK ``TracerProvider``/``MeterProvider``
(``redu_mcp.telemetry`` does when the standard ``OTEL_*`` variables ask for it; tests install
in-memory ones). Names follow the OpenTelemetry HTTP semantic conventions where they exist.

What a span or data point may carry: the method, the path *template* (``/databases/{id}``, never a
raw id nor a query string), the server's host and port, the status, the attempt number and an
error type. Never the API key (a header), a password (a request body) or a full URL.

Metrics:

* ``http.client.request.duration`` (histogram, s): every attempt, by method, template, status and
  ``error.type``; its count is the number of upstream requests;
* ``redu.api.retries`` (counter): attempts started again after a passing failure, by method,
  template and the ``error.type`` that caused them;
* ``redu.api.rate_limit.wait`` (histogram, s): time waited before retrying an HTTP 429, as the
  API's ``Retry-After`` asked (capped by the retry policy) or by backoff.

Start-up cost: the metrics API (``opentelemetry.metrics``, ≈ 10 ms to import) is imported on first
use, and only once something else has imported it: no ``MeterProvider`` can exist before that,
so until then there is nothing to record to.
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Final, Generic, TypeVar

from opentelemetry import trace
from opentelemetry.trace import SpanKind, StatusCode

from redu_mcp import __version__

if TYPE_CHECKING:
    from opentelemetry.metrics import Counter, Histogram, Meter
    from opentelemetry.util.types import AttributeValue

    Attributes = dict[str, AttributeValue]

SCOPE: Final = "redu_mcp.api"
T = TypeVar("T")
_tracer = trace.get_tracer(SCOPE, __version__)
_ID_SEGMENT: Final = re.compile(r"/\d+(?=/|$)")


def path_template(path: str) -> str:
    """``databases/42`` → ``/databases/{id}``: the low-cardinality name of an endpoint."""
    path = "/" + path.split("?", 1)[0].lstrip("/")
    return _ID_SEGMENT.sub("/{id}", path)


class WhenMetricsLoaded(Generic[T]):
    """Instruments made by ``make(meter)`` the first time they are asked for once something has
    imported the metrics API; None before that (no ``MeterProvider`` can exist yet, and start-up
    does not pay for the import)."""

    def __init__(self, scope: str, make: Callable[[Meter], T]) -> None:
        self._scope = scope
        self._make = make
        self._made: list[T] = []

    def get(self) -> T | None:
        if not self._made:
            if "opentelemetry.metrics" not in sys.modules:
                return None
            from opentelemetry import metrics

            self._made.append(self._make(metrics.get_meter(self._scope, __version__)))
        return self._made[0]


@dataclass(frozen=True)
class _Instruments:
    duration: Histogram
    retries: Counter
    rate_limit_wait: Histogram


def _instruments(meter: Meter) -> _Instruments:
    return _Instruments(
        duration=meter.create_histogram(
            "http.client.request.duration", unit="s", description="Duration of Redu API requests (each attempt)"
        ),
        retries=meter.create_counter(
            "redu.api.retries", unit="{retry}", description="Redu API requests started again after a passing failure"
        ),
        rate_limit_wait=meter.create_histogram(
            "redu.api.rate_limit.wait", unit="s", description="Time waited before retrying a rate-limited (429) request"
        ),
    )


_metrics = WhenMetricsLoaded(SCOPE, _instruments)


class Exchange:
    """One HTTP attempt: a CLIENT span named ``<METHOD> <template>`` and one duration data point.

    Use as a context manager around the request; call ``answered(status)`` when a response came, or
    ``failed(exc)`` when none did."""

    __slots__ = ("_attributes", "_cm", "_error_type", "_span", "_started")

    def __init__(self, method: str, path: str, *, attempt: int, host: str, port: int | None) -> None:
        template = path_template(path)
        self._attributes: Attributes = {
            "http.request.method": method,
            "url.template": template,
            "server.address": host,
        }
        if port is not None:
            self._attributes["server.port"] = port
        span_attributes: Attributes = {**self._attributes, "redu.api.attempt": attempt}
        if attempt > 1:
            span_attributes["http.request.resend_count"] = attempt - 1
        self._cm = _tracer.start_as_current_span(
            f"{method} {template}",
            kind=SpanKind.CLIENT,
            attributes=span_attributes,
            record_exception=False,  # exception texts are ours to word (and scrub), not the span's
            set_status_on_exception=False,
        )
        self._error_type: str | None = None
        self._started = 0.0

    def __enter__(self) -> Exchange:
        self._span = self._cm.__enter__()
        self._started = time.perf_counter()
        return self

    def answered(self, status: int) -> None:
        self._attributes["http.response.status_code"] = status
        self._span.set_attribute("http.response.status_code", status)
        if status >= 400:
            self._error(str(status))

    def failed(self, exc: BaseException) -> None:
        """No (usable) answer: ``error.type`` is the exception's class name, e.g. ``ConnectError``."""
        self._error(type(exc).__name__)

    def _error(self, error_type: str) -> None:
        self._error_type = error_type
        self._attributes["error.type"] = error_type
        self._span.set_attribute("error.type", error_type)
        self._span.set_status(StatusCode.ERROR)

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc is not None and self._error_type is None:
            self.failed(exc)  # e.g. cancelled: still an attempt that ended without an answer
        instruments = _metrics.get()
        if instruments is not None:
            instruments.duration.record(time.perf_counter() - self._started, self._attributes)
        self._cm.__exit__(exc_type, exc, tb)


def retried(endpoint: str, error_type: str, wait: float, *, rate_limited: bool) -> None:
    """A retry is about to wait ``wait`` seconds after a failure of ``endpoint`` (``"GET /path"``)."""
    instruments = _metrics.get()
    if instruments is None:
        return
    method, _, path = endpoint.partition(" ")
    attributes: Attributes = {"http.request.method": method, "url.template": path_template(path)}
    instruments.retries.add(1, {**attributes, "error.type": error_type})
    if rate_limited:
        instruments.rate_limit_wait.record(wait, attributes)
