"""OpenTelemetry: spans per Redu API request and metrics, asserted with in-memory exporters; the
``OTEL_*`` set-up of the real command, exporting OTLP to a local collector; and off by default.

Providers are global and can be installed once per process, so the in-memory ones are installed by
the first test that asks for them (``otel`` fixture) and cleared before each test; metrics use
delta temporality, so each collection holds only what happened since the previous one.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import Counter, Histogram, MeterProvider
from opentelemetry.sdk.metrics.export import AggregationTemporality, InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from redu_mcp.api import DatabaseCreate, ReduError
from redu_mcp.sandbox import DEFAULT_API_KEY, SANDBOX_BASE_URL, Fault, Sandbox
from redu_mcp.server import tools_for
from redu_mcp.telemetry import configure_from_env, requested_exporters
from tests.helpers import CREATE_ARGS, FAST_RETRY, REPO, connect, serving_asgi

PASSWORD = "Tr1cky-Passw0rd-for-otel"


class Telemetry:
    def __init__(self, spans: InMemorySpanExporter, reader: InMemoryMetricReader) -> None:
        self.spans_exporter = spans
        self.reader = reader
        self.collected: list[Any] = []  # metrics data collected during the current test

    def reset(self) -> None:
        self.spans_exporter.clear()
        self.reader.get_metrics_data()  # drop what earlier tests recorded (delta: the next starts at zero)
        self.collected.clear()

    def spans(self, name: str | None = None) -> list[ReadableSpan]:
        found = list(self.spans_exporter.get_finished_spans())
        return [s for s in found if name is None or s.name == name]

    def _collect(self) -> list[Any]:
        data = self.reader.get_metrics_data()
        if data is not None:
            self.collected.append(data)
        return self.collected

    def points(self, name: str) -> list[Any]:
        """Data points of metric ``name`` recorded during this test."""
        return [
            point
            for data in self._collect()
            for resource in data.resource_metrics
            for scope in resource.scope_metrics
            for metric in scope.metrics
            if metric.name == name
            for point in metric.data.data_points
        ]

    def everything(self) -> str:
        """Every finished span and every metric of this test, as JSON text (to search for leaks)."""
        return "\n".join([*(s.to_json() for s in self.spans()), *(d.to_json() for d in self._collect())])

    def labels(self) -> str:
        """What names things in the telemetry: span names, span attributes, metric names and data point
        attributes (not random ids or timestamps, which may hold any digits)."""
        found: list[str] = []
        for span in self.spans():
            found += [span.name, *(f"{k}={v}" for k, v in (span.attributes or {}).items())]
        for data in self._collect():
            for resource in data.resource_metrics:
                for scope in resource.scope_metrics:
                    for metric in scope.metrics:
                        found.append(metric.name)
                        for point in metric.data.data_points:
                            found += [f"{k}={v}" for k, v in (point.attributes or {}).items()]
        return "\n".join(found)


_INSTALLED: list[Telemetry] = []


@pytest.fixture
def otel() -> Iterator[Telemetry]:
    if not _INSTALLED:
        spans = InMemorySpanExporter()
        tracer_provider = TracerProvider()
        tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
        trace.set_tracer_provider(tracer_provider)
        delta = AggregationTemporality.DELTA
        reader = InMemoryMetricReader(preferred_temporality={Histogram: delta, Counter: delta})
        metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
        _INSTALLED.append(Telemetry(spans, reader))
    telemetry = _INSTALLED[0]
    telemetry.reset()
    yield telemetry


def by_attributes(points: list[Any], **wanted: Any) -> list[Any]:
    return [p for p in points if all(p.attributes.get(k.replace("__", ".")) == v for k, v in wanted.items())]


# --- the API library: one CLIENT span per HTTP attempt -------------------------------------------------


async def test_each_api_request_is_a_client_span_named_by_its_path_template(otel: Telemetry):
    sandbox = Sandbox()
    async with sandbox.client(retry=FAST_RETRY) as redu:
        await redu.me()
        with pytest.raises(ReduError):
            await redu.get_database(4242)

    me, missing = otel.spans("GET /me"), otel.spans("GET /databases/{id}")
    assert len(me) == len(missing) == 1
    assert me[0].kind is SpanKind.CLIENT and me[0].instrumentation_scope.name == "redu_mcp.api"
    assert dict(me[0].attributes) == {
        "http.request.method": "GET",
        "url.template": "/me",
        "server.address": sandbox.base_url.split("/")[2],  # this emulator's own host
        "server.port": 80,
        "redu.api.attempt": 1,
        "http.response.status_code": 200,
    }
    assert me[0].status.status_code is StatusCode.UNSET
    assert missing[0].attributes["http.response.status_code"] == 404
    assert missing[0].attributes["error.type"] == "404"
    assert missing[0].status.status_code is StatusCode.ERROR
    assert "4242" not in otel.labels()  # ids never reach span names, attributes or metrics

    durations = otel.points("http.client.request.duration")
    assert by_attributes(durations, url__template="/me", http__response__status_code=200)[0].count == 1
    assert by_attributes(durations, url__template="/databases/{id}", error__type="404")[0].count == 1


async def test_retried_attempts_are_spans_numbered_and_counted(otel: Telemetry):
    sandbox = Sandbox()
    sandbox.faults.add(Fault(method="GET", path="/v1/flavors", status=503, times=2))
    async with sandbox.client(retry=FAST_RETRY) as redu:
        await redu.list_flavors()

    spans = otel.spans("GET /flavors")
    assert [s.attributes["redu.api.attempt"] for s in spans] == [1, 2, 3]
    assert [s.attributes.get("http.request.resend_count") for s in spans] == [None, 1, 2]
    assert [s.attributes["http.response.status_code"] for s in spans] == [503, 503, 200]

    retries = otel.points("redu.api.retries")
    assert [(p.attributes["url.template"], p.attributes["error.type"], p.value) for p in retries] == [
        ("/flavors", "503", 2)
    ]


async def test_a_rate_limited_retry_records_its_wait(otel: Telemetry):
    sandbox = Sandbox()
    sandbox.faults.add(Fault(method="GET", path="/v1/networks", status=429, retry_after="0.02"))
    async with sandbox.client(retry=FAST_RETRY) as redu:
        await redu.list_networks()

    waits = otel.points("redu.api.rate_limit.wait")
    assert len(waits) == 1
    assert waits[0].attributes == {"http.request.method": "GET", "url.template": "/networks"}
    assert (waits[0].count, waits[0].sum) == (1, pytest.approx(0.02))  # what Retry-After asked (under the cap)
    assert [p.attributes["error.type"] for p in otel.points("redu.api.retries")] == ["429"]


async def test_an_attempt_without_an_answer_is_an_error_span_without_a_status(otel: Telemetry):
    sandbox = Sandbox()
    sandbox.faults.add(Fault(method="GET", path="/v1/keypairs", drop=True))
    async with sandbox.client(retry=FAST_RETRY) as redu:
        await redu.list_keypairs()

    first, second = otel.spans("GET /keypairs")
    assert first.status.status_code is StatusCode.ERROR
    assert "http.response.status_code" not in first.attributes
    assert first.attributes["error.type"].isidentifier()  # the transport error's class, e.g. RemoteProtocolError
    assert second.attributes["http.response.status_code"] == 200
    assert [p.attributes["error.type"] for p in otel.points("redu.api.retries")] == ["TransportError"]


async def test_pages_are_spans_without_their_cursor(otel: Telemetry):
    sandbox = Sandbox(page_size=1)
    async with sandbox.client(retry=FAST_RETRY) as redu:
        for name in ("one", "two", "three"):
            await redu.create_database(DatabaseCreate(name=name, **CREATE_ARGS))
        assert len(await redu.list_databases()) == 3

    pages = otel.spans("GET /databases")
    assert len(pages) == 3
    assert {s.attributes["url.template"] for s in pages} == {"/databases"}
    text = otel.everything()
    assert "cursor" not in text and "?" not in text


# --- the MCP face: request metrics, and the API spans beneath the SDK's tool spans --------------------------


async def test_tool_calls_are_timed_and_api_spans_nest_under_them(make_server, otel: Telemetry, mode: str):
    async with connect(make_server(), mode) as client:
        assert not (await client.call_tool("whoami", {})).is_error
        assert (await client.call_tool("get_database", {"id": 4242})).is_error  # upstream 404
        assert (await client.call_tool("get_database", {"id": "x"})).is_error  # refused: no upstream call

    tool_span = otel.spans("tools/call whoami")[0]
    api_span = otel.spans("GET /me")[0]
    assert tool_span.kind is SpanKind.SERVER and tool_span.instrumentation_scope.name == "mcp-python-sdk"
    assert api_span.parent is not None and api_span.parent.span_id == tool_span.context.span_id
    assert api_span.context.trace_id == tool_span.context.trace_id
    assert len(otel.spans("GET /databases/{id}")) == 1  # the refused call sent nothing

    durations = otel.points("mcp.server.operation.duration")
    whoami = by_attributes(durations, gen_ai__tool__name="whoami")
    assert len(whoami) == 1 and whoami[0].count == 1
    assert whoami[0].attributes["mcp.method.name"] == "tools/call"
    assert "error.type" not in whoami[0].attributes
    failed = by_attributes(durations, gen_ai__tool__name="get_database", error__type="tool_error")
    assert sum(p.count for p in failed) == 2  # the upstream 404 and the refused arguments


async def test_no_key_password_or_url_in_any_span_or_metric(make_server, otel: Telemetry):
    async with connect(make_server()) as client:
        created = await client.call_tool("create_database", dict(CREATE_ARGS, name="secretive", db_password=PASSWORD))
        assert not created.is_error, created.content[0].text
        conflict = await client.call_tool("create_database", dict(CREATE_ARGS, name="secretive", db_password=PASSWORD))
        assert not conflict.is_error
        await client.call_tool("list_databases", {})

    assert otel.spans("POST /databases")
    text = otel.everything()
    for secret in (PASSWORD, DEFAULT_API_KEY, SANDBOX_BASE_URL, "x-api-key"):
        assert secret not in text


# --- set-up from the environment ------------------------------------------------------------------------


def test_which_exporters_the_environment_asks_for():
    assert requested_exporters({}, "traces") == []
    assert requested_exporters({"OTEL_TRACES_EXPORTER": "none"}, "traces") == []
    assert requested_exporters({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, "metrics") == ["otlp"]
    assert requested_exporters({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318"}, "metrics") == []
    assert requested_exporters({"OTEL_METRICS_EXPORTER": "OTLP, console,otlp"}, "metrics") == ["otlp", "console"]
    assert requested_exporters({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "x"}, "traces") == []
    assert configure_from_env({"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"}) == {}
    assert configure_from_env({}) == {}


def test_without_the_sdk_it_warns_and_stays_off(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture):
    monkeypatch.setitem(sys.modules, "opentelemetry.sdk.resources", None)  # as if redu-mcp[otel] were absent
    with caplog.at_level(logging.WARNING, logger="redu_mcp.telemetry"):
        assert configure_from_env({"OTEL_TRACES_EXPORTER": "otlp"}) == {}
    assert "install redu-mcp[otel]" in caplog.text


def test_an_unsupported_exporter_alone_warns_and_loads_nothing(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
):
    monkeypatch.setitem(sys.modules, "opentelemetry.sdk.resources", None)  # any attempt to load the SDK would show
    with caplog.at_level(logging.WARNING, logger="redu_mcp.telemetry"):
        assert configure_from_env({"OTEL_TRACES_EXPORTER": "zipkin"}) == {}
    assert "OTEL_TRACES_EXPORTER=zipkin is not supported here" in caplog.text
    assert "install redu-mcp[otel]" not in caplog.text  # it did not go looking for the SDK


OFF_BY_DEFAULT = """
import sys, anyio
from mcp import Client
from redu_mcp.telemetry import configure_from_env
from redu_mcp.sandbox import Sandbox
from redu_mcp.server import Settings, build_server
assert configure_from_env() == {}
async def main():
    async with Client(build_server(Settings(sandbox=True), client=Sandbox().client())) as client:
        await client.list_tools()
        assert not (await client.call_tool("whoami", {})).is_error
anyio.run(main)
print(sorted(m for m in sys.modules if m.startswith(("opentelemetry.sdk", "opentelemetry.metrics"))))
"""


def test_off_by_default_imports_neither_the_sdk_nor_the_metrics_api(tmp_path: Path):
    """Without OTEL_* variables nothing is installed, and start-up pays for no telemetry import."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env["XDG_STATE_HOME"] = str(tmp_path)
    done = subprocess.run(
        [sys.executable, "-c", OFF_BY_DEFAULT], capture_output=True, text=True, env=env, cwd=REPO, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


# --- the real command: OTLP/HTTP export to a local collector, console export to stderr -------------------


class Collector:
    """A minimal OTLP/HTTP receiver: keeps every request body per signal, and the headers it came with."""

    def __init__(self) -> None:
        self.bodies: dict[str, list[bytes]] = {"traces": [], "metrics": []}
        self.authorization: set[str | None] = set()

    def app(self) -> Starlette:
        async def receive(request: Request) -> Response:
            self.bodies[request.path_params["signal"]].append(await request.body())
            self.authorization.add(request.headers.get("authorization"))
            return Response(b"", media_type="application/x-protobuf")

        return Starlette(routes=[Route("/v1/{signal:str}", receive, methods=["POST"])])

    def span_names(self) -> set[str]:
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

        names = set()
        for body in self.bodies["traces"]:
            request = ExportTraceServiceRequest.FromString(body)
            names |= {s.name for r in request.resource_spans for ss in r.scope_spans for s in ss.spans}
        return names

    def metric_names(self) -> set[str]:
        from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

        names = set()
        for body in self.bodies["metrics"]:
            request = ExportMetricsServiceRequest.FromString(body)
            names |= {m.name for r in request.resource_metrics for sm in r.scope_metrics for m in sm.metrics}
        return names

    def service_names(self) -> set[str]:
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

        return {
            attribute.value.string_value
            for body in self.bodies["traces"]
            for r in ExportTraceServiceRequest.FromString(body).resource_spans
            for attribute in r.resource.attributes
            if attribute.key == "service.name"
        }


WANTED_SPANS = {"tools/call whoami", "GET /me", "tools/call create_database", "POST /databases"}
WANTED_METRICS = {"mcp.server.operation.duration", "http.client.request.duration"}


async def test_the_command_exports_otlp_when_the_environment_asks(tmp_path: Path):
    collector = Collector()
    async with serving_asgi(collector.app()) as port:
        env = {
            "XDG_STATE_HOME": str(tmp_path),
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}",  # alone, it means OTLP for both
            "OTEL_EXPORTER_OTLP_HEADERS": "authorization=Bearer collector-token",
            "OTEL_SERVICE_NAME": "redu-mcp-under-test",
            "OTEL_BSP_SCHEDULE_DELAY": "50",  # export while the server runs, not only at its exit
            "OTEL_METRIC_EXPORT_INTERVAL": "100",
        }
        server = StdioServerParameters(
            command=sys.executable, args=["-m", "redu_mcp", "--sandbox"], env=env, cwd=str(REPO)
        )
        async with Client(server) as client:
            assert not (await client.call_tool("whoami", {})).is_error
            created = await client.call_tool("create_database", dict(CREATE_ARGS, name="traced", db_password=PASSWORD))
            assert not created.is_error
            with anyio.fail_after(30):  # a bound on waiting for the exports, not a timing assertion
                while not (collector.span_names() >= WANTED_SPANS and collector.metric_names() >= WANTED_METRICS):
                    await anyio.sleep(0.05)

    assert collector.service_names() == {"redu-mcp-under-test"}
    assert collector.authorization == {"Bearer collector-token"}
    payload = b"".join(collector.bodies["traces"] + collector.bodies["metrics"])
    for secret in (PASSWORD, DEFAULT_API_KEY, SANDBOX_BASE_URL):
        assert secret.encode() not in payload


async def test_console_export_goes_to_stderr_never_to_the_stdio_channel(tmp_path: Path):
    env = {"XDG_STATE_HOME": str(tmp_path), "OTEL_TRACES_EXPORTER": "console", "OTEL_BSP_SCHEDULE_DELAY": "50"}
    server = StdioServerParameters(command=sys.executable, args=["-m", "redu_mcp", "--sandbox"], env=env, cwd=str(REPO))
    with (tmp_path / "stderr.txt").open("w+") as errlog:
        async with Client(stdio_client(server, errlog=errlog)) as client:
            assert len((await client.list_tools()).tools) == len(tools_for("full"))  # stdout carried nothing but MCP
            assert not (await client.call_tool("whoami", {})).is_error
        errlog.seek(0)
        logged = errlog.read()
    assert '"name": "GET /me"' in logged and '"name": "tools/call whoami"' in logged
    assert "telemetry: traces to console" in logged
    assert DEFAULT_API_KEY not in logged
