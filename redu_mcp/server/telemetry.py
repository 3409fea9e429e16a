"""Metrics of the MCP face (the duration of every MCP request) and a span per statement a data tool
runs on an instance.

The SDK already opens one SERVER span per inbound message (tracer ``mcp-python-sdk``: ``tools/call
whoami``, with ``gen_ai.tool.name`` and ``error.type=tool_error`` on error results), and the API
library adds a CLIENT span per Redu API request beneath it (``redu_mcp.api._telemetry``). The SDK
records no metrics; this middleware records

* ``mcp.server.operation.duration`` (histogram, s; the name of the OpenTelemetry MCP semantic
  conventions), by ``mcp.method.name``, ``gen_ai.tool.name`` (tool calls), ``mcp.protocol.version``
  and ``error.type`` (``tool_error`` for an error result, else the exception's class). Its count by
  tool is the number of tool calls; with ``error.type``, the number of failed ones.

It is a no-op until a ``MeterProvider`` is installed, and imports the metrics API only once
something else has (see ``redu_mcp.api._telemetry``): start-up does not pay for it.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Final

from mcp.types import CallToolResult
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind

from redu_mcp import __version__
from redu_mcp.api import WhenMetricsLoaded

if TYPE_CHECKING:
    from mcp.server import ServerRequestContext
    from mcp.server.context import CallNext, HandlerResult

SCOPE: Final = "redu_mcp.server"
_duration = WhenMetricsLoaded(
    SCOPE,
    lambda meter: meter.create_histogram(
        "mcp.server.operation.duration", unit="s", description="Duration of MCP requests, as the server saw them"
    ),
)


async def operation_metrics(ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
    """Server middleware: one ``mcp.server.operation.duration`` data point per MCP request."""
    histogram = _duration.get()
    if histogram is None or ctx.request_id is None:  # off, or a notification (nothing to time)
        return await call_next(ctx)
    attributes: dict[str, str] = {"mcp.method.name": ctx.method}
    if ctx.protocol_version:
        attributes["mcp.protocol.version"] = ctx.protocol_version
    name = ctx.params.get("name") if isinstance(ctx.params, dict) else None
    if ctx.method == "tools/call" and isinstance(name, str):
        attributes["gen_ai.tool.name"] = name
    started = time.perf_counter()
    try:
        result = await call_next(ctx)
    except BaseException as exc:
        attributes["error.type"] = type(exc).__qualname__
        histogram.record(time.perf_counter() - started, attributes)
        raise
    if (isinstance(result, CallToolResult) and result.is_error) or (
        isinstance(result, dict) and result.get("isError") is True
    ):
        attributes["error.type"] = "tool_error"  # as the SDK's span says
    histogram.record(time.perf_counter() - started, attributes)
    return result


_tracer = trace.get_tracer(SCOPE, __version__)


@contextmanager
def data_span(system: str, operation: str | None, tables: Iterable[str] = ()) -> Iterator[Span]:
    """A CLIENT span around one statement or command run on an instance: the engine
    (``db.system.name``), the operation (``SELECT``, ``GET``) and the first table. Never the text:
    it holds the caller's literals. An operation known only afterwards: ``name_operation``."""
    attributes: dict[str, str] = {"db.system.name": system}
    if operation:
        attributes["db.operation.name"] = operation.upper()
    first = next(iter(tables), None)
    if first:
        attributes["db.collection.name"] = first
    name = " ".join(part for part in (attributes.get("db.operation.name"), first) if part) or system
    with _tracer.start_as_current_span(name, kind=SpanKind.CLIENT, attributes=attributes) as span:
        yield span


def name_operation(span: Span, operation: str) -> None:
    """Name ``span``'s operation once it is known (a command the instance itself recognised)."""
    span.set_attribute("db.operation.name", operation.upper())
    span.update_name(operation.upper())
