"""OpenTelemetry export, configured by the standard ``OTEL_*`` variables, and off without them.

The code that *produces* telemetry uses only the OpenTelemetry API, which is a no-op until a provider
is installed: the SDK's span per MCP request, ``redu_mcp.server.telemetry`` (request durations) and
``redu_mcp.api._telemetry`` (a span per Redu API request; request, retry and rate-limit metrics).
This module installs the providers, once, at start-up (``redu-mcp`` calls ``configure_from_env``),
and only when asked:

* ``OTEL_TRACES_EXPORTER`` / ``OTEL_METRICS_EXPORTER``: ``otlp``, ``console`` or ``none`` (a list
  is allowed); an ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``…_TRACES_ENDPOINT`` / ``…_METRICS_ENDPOINT``)
  alone means ``otlp``. Nothing set: nothing installed, nothing imported.
* ``OTEL_SDK_DISABLED=true`` turns it all off.
* OTLP goes over HTTP/protobuf (``OTEL_EXPORTER_OTLP_PROTOCOL`` ``grpc`` works only if
  ``opentelemetry-exporter-otlp-proto-grpc`` is installed); the exporters read their endpoint,
  headers, timeout and compression from the usual ``OTEL_EXPORTER_OTLP_*`` variables.
* ``console`` writes to **stderr**: stdout is the MCP channel of the stdio transport.
* ``OTEL_SERVICE_NAME`` / ``OTEL_RESOURCE_ATTRIBUTES`` name the service (default ``redu-mcp``).

The SDK and the exporter come with the ``otel`` extra (``redu-mcp[otel]``); without them a warning
is logged and the server runs without telemetry. Nothing here ever stops the server from starting.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from typing import Any

from redu_mcp import __version__

log = logging.getLogger(__name__)

SIGNALS = ("traces", "metrics")
EXPORTERS = ("otlp", "console")


def requested_exporters(env: Mapping[str, str], signal: str) -> list[str]:
    """The exporters ``env`` asks for one signal (``traces`` or ``metrics``), ``none`` removed."""
    upper = signal.upper()
    raw = env.get(f"OTEL_{upper}_EXPORTER", "")
    if not raw.strip() and (env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get(f"OTEL_EXPORTER_OTLP_{upper}_ENDPOINT")):
        raw = "otlp"  # an endpoint alone means OTLP, the specification's default exporter
    names = [name.strip().lower() for name in raw.split(",")]
    return [name for name in dict.fromkeys(names) if name and name != "none"]


def configure_from_env(env: Mapping[str, str] | None = None) -> dict[str, list[str]]:
    """Install tracer and meter providers as the ``OTEL_*`` variables ask; return what was installed
    (``{"traces": ["otlp"], ...}``; empty when telemetry stays off)."""
    env = os.environ if env is None else env
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return {}
    wanted: dict[str, list[str]] = {}
    for signal in SIGNALS:
        names = requested_exporters(env, signal)
        for name in names:
            if name not in EXPORTERS:
                log.warning("telemetry: OTEL_%s_EXPORTER=%s is not supported here (use otlp or console)",
                            signal.upper(), name)  # fmt: skip
        if supported := [name for name in names if name in EXPORTERS]:
            wanted[signal] = supported
    if not wanted:
        return {}  # nothing this server can export: the SDK is not even imported
    try:
        from opentelemetry.sdk.resources import Resource
    except ImportError:
        log.warning(
            "telemetry: OTEL_* variables ask for %s, but the OpenTelemetry SDK is not installed "
            "(install redu-mcp[otel]); running without telemetry",
            " and ".join(wanted),
        )
        return {}
    attributes: dict[str, Any] = {"service.version": __version__}
    if not env.get("OTEL_SERVICE_NAME") and "service.name=" not in env.get("OTEL_RESOURCE_ATTRIBUTES", ""):
        attributes["service.name"] = "redu-mcp"  # a default only: what the environment says wins
    resource = Resource.create(attributes)
    installed: dict[str, list[str]] = {}
    for signal, names in wanted.items():
        exporters = []
        for name in names:
            try:
                exporter = _exporter(env, signal, name)
            except Exception as exc:  # never let telemetry stop the server; the text may quote headers
                log.warning("telemetry: could not set up the %s %s exporter (%s)", name, signal, type(exc).__name__)
                continue
            if exporter is not None:
                exporters.append((name, exporter))
        if exporters:
            (_install_traces if signal == "traces" else _install_metrics)(resource, [e for _, e in exporters])
            installed[signal] = [name for name, _ in exporters]
    if installed:
        log.info("telemetry: %s", "; ".join(f"{signal} to {', '.join(names)}" for signal, names in installed.items()))
    return installed


def _protocol(env: Mapping[str, str], signal: str) -> str:
    raw = env.get(f"OTEL_EXPORTER_OTLP_{signal.upper()}_PROTOCOL") or env.get("OTEL_EXPORTER_OTLP_PROTOCOL") or ""
    return raw.strip().lower() or "http/protobuf"


def _exporter(env: Mapping[str, str], signal: str, name: str) -> Any:
    """The exporter ``name`` for ``signal``, or None (with a warning) when it cannot be had."""
    if name == "console":
        if signal == "traces":
            from opentelemetry.sdk.trace.export import ConsoleSpanExporter

            return ConsoleSpanExporter(out=sys.stderr)  # stdout carries MCP over stdio
        from opentelemetry.sdk.metrics.export import ConsoleMetricExporter

        return ConsoleMetricExporter(out=sys.stderr)
    protocol = _protocol(env, signal)
    module = {"http/protobuf": "http", "grpc": "grpc"}.get(protocol)
    if module is None:
        log.warning("telemetry: OTLP protocol %r is not supported (use http/protobuf or grpc)", protocol)
        return None
    try:
        if signal == "traces":
            if module == "http":
                from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
            else:
                from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (  # type: ignore[import-not-found,no-redef,unused-ignore]  # optional: grpc exporter not in the otel extra
                    OTLPSpanExporter,
                )
            return OTLPSpanExporter()  # endpoint, headers, timeout, compression: from OTEL_EXPORTER_OTLP_*
        if module == "http":
            from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
        else:
            from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import (  # type: ignore[import-not-found,no-redef,unused-ignore]  # optional: grpc exporter not in the otel extra
                OTLPMetricExporter,
            )
        return OTLPMetricExporter()
    except ImportError:
        package = f"opentelemetry-exporter-otlp-proto-{module}"
        log.warning("telemetry: the OTLP %s exporter needs %s, which is not installed", signal, package)
        return None


def _install_traces(resource: Any, exporters: list[Any]) -> None:
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=resource)  # flushed and shut down at exit
    for exporter in exporters:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)


def _install_metrics(resource: Any, exporters: list[Any]) -> None:
    from opentelemetry import metrics
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

    # Exported every OTEL_METRIC_EXPORT_INTERVAL ms (default 60 s), and once more at exit.
    readers = [PeriodicExportingMetricReader(exporter) for exporter in exporters]
    metrics.set_meter_provider(MeterProvider(resource=resource, metric_readers=readers))
