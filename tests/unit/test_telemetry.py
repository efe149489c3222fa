"""The counters on OpenTelemetry, and their export to Application Insights, proved without Azure."""

from __future__ import annotations

import json
import logging
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from unittest.mock import Mock

import pytest
from azure.identity import ManagedIdentityCredential
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, Sum

from pushfuncs import telemetry, wns
from pushfuncs.metrics import METER_NAME, Metrics, metrics

Points = dict[tuple[str, tuple[tuple[str, str], ...]], int]
IKEY = "00000000-0000-4000-8000-000000000000"
CONNECTION_STRING = "APPLICATIONINSIGHTS_CONNECTION_STRING"


def counters_on(reader: InMemoryMetricReader) -> Metrics:
    return Metrics(meter=MeterProvider(metric_readers=[reader]).get_meter(METER_NAME))


def points(reader: InMemoryMetricReader) -> Points:
    """(counter, sorted attributes) -> value of everything the reader collects now."""
    found: Points = {}
    data = reader.get_metrics_data()
    for resource_metrics in data.resource_metrics if data else ():
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                assert isinstance(metric.data, Sum) and metric.data.is_monotonic, metric.name
                for point in metric.data.data_points:
                    found[(metric.name, tuple(sorted(point.attributes.items())))] = int(point.value)
    return found


# --- pushfuncs.metrics on OpenTelemetry


def test_a_wns_outcome_and_a_storage_operation_are_opentelemetry_counters() -> None:
    reader = InMemoryMetricReader()
    counters = counters_on(reader)
    counters.add("wns.success")
    counters.add("wns.success")
    counters.add("wns.badchannel")
    counters.add("storage.table.post")
    counters.add("storage.queue.put", 3)
    counters.add("token.entra.requests")

    assert points(reader) == {
        ("wns.success", ()): 2,
        ("wns.badchannel", ()): 1,
        ("storage.requests", (("operation", "post"), ("service", "table"))): 1,
        ("storage.requests", (("operation", "put"), ("service", "queue"))): 3,
        ("token.entra.requests", ()): 1,
    }
    assert counters.snapshot() == {
        "storage.queue.put": 3,
        "storage.table.post": 1,
        "token.entra.requests": 1,
        "wns.badchannel": 1,
        "wns.success": 2,
    }


def test_every_notification_hubs_metric_name_is_a_counter_of_that_name() -> None:
    rules = [value for value in vars(wns).values() if isinstance(value, wns.Rule)]
    names = {rule.metric for rule in [*rules, *wns.RESPONSE_ACTIONS.values(), *wns.STATUS_ACTIONS.values()]}
    assert {"wns.success", "wns.badchannel", "wns.expiredchannel", "wns.throttled", "wns.pnserror"} <= names
    reader = InMemoryMetricReader()
    counters = counters_on(reader)
    for name in names:
        counters.add(name)
    assert points(reader) == {(name, ()): 1 for name in names}


def test_opentelemetry_reads_the_same_counts_and_reset_does_not_make_them_go_down() -> None:
    reader = InMemoryMetricReader()
    counters = counters_on(reader)
    counters.add("wns.throttled", 2)
    assert points(reader) == {("wns.throttled", ()): 2}
    counters.reset()
    counters.add("wns.throttled")
    assert counters.get("wns.throttled") == 1
    assert points(reader) == {("wns.throttled", ()): 3}


def test_an_instrument_is_created_once_not_per_add() -> None:
    meter = Mock(wraps=MeterProvider(metric_readers=[InMemoryMetricReader()]).get_meter(METER_NAME))
    counters = Metrics(meter=meter)
    for _ in range(3):
        counters.add("wns.success")
        counters.add("storage.table.get")
        counters.add("storage.queue.delete")
    created = [call.args[0] for call in meter.create_observable_counter.call_args_list]
    assert sorted(created) == ["storage.requests", "wns.success"]


def test_rebinding_moves_every_counter_to_the_new_meter() -> None:
    first, second = InMemoryMetricReader(), InMemoryMetricReader()
    counters = counters_on(first)
    counters.add("wns.dropped")
    counters.bind_meter(MeterProvider(metric_readers=[second]).get_meter(METER_NAME))
    counters.add("wns.dropped")
    counters.add("storage.table.get")
    assert points(first) == {}
    assert points(second) == {
        ("wns.dropped", ()): 2,
        ("storage.requests", (("operation", "get"), ("service", "table"))): 1,
    }


def test_without_an_sdk_the_counters_still_count_locally() -> None:
    counters = Metrics()  # the global OpenTelemetry API: no provider set in this process
    counters.add("wns.success")
    counters.add("delivery.exhausted", 2)
    assert counters.get("wns.success") == 1
    assert counters.get("never.counted") == 0
    assert counters.snapshot() == {"delivery.exhausted": 2, "wns.success": 1}
    counters.reset()
    assert counters.snapshot() == {}


# --- pushfuncs.telemetry


@pytest.fixture
def no_telemetry_left_behind() -> Iterator[None]:
    assert telemetry.configure_telemetry({}) is None, "a provider was left configured before this test"
    yield
    telemetry.shutdown_telemetry()


@pytest.fixture
def quiet_exporter(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The exporter without its own calls home (SDK statistics, remote settings); its retry
    files under tmp_path."""
    for setting in (
        "APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL",
        "APPLICATIONINSIGHTS_SDKSTATS_DISABLED",
        "APPLICATIONINSIGHTS_CONTROLPLANE_DISABLED",
    ):
        monkeypatch.setenv(setting, "true")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))


def test_without_a_connection_string_nothing_is_set_up(
    monkeypatch: pytest.MonkeyPatch, no_telemetry_left_behind: None
) -> None:
    build = Mock()
    monkeypatch.setattr(telemetry, "build_meter_provider", build)
    assert telemetry.configure_telemetry({}) is None
    assert telemetry.configure_telemetry({CONNECTION_STRING: "  "}) is None
    build.assert_not_called()


def test_configuring_binds_the_app_counters_to_the_provider_once(
    monkeypatch: pytest.MonkeyPatch, no_telemetry_left_behind: None
) -> None:
    reader = InMemoryMetricReader()
    build = Mock(return_value=MeterProvider(metric_readers=[reader]))
    monkeypatch.setattr(telemetry, "build_meter_provider", build)
    env = {
        CONNECTION_STRING: f"InstrumentationKey={IKEY}",
        "APPLICATIONINSIGHTS_AUTHENTICATION_STRING": "ClientId=11111111-2222-3333-4444-555555555555;Authorization=AAD",
        "WEBSITE_SITE_NAME": "func-api-test",
    }
    provider = telemetry.configure_telemetry(env)
    assert provider is build.return_value
    assert telemetry.configure_telemetry(env) is provider
    build.assert_called_once()
    assert build.call_args.args == (f"InstrumentationKey={IKEY}",)
    assert isinstance(build.call_args.kwargs["credential"], ManagedIdentityCredential)
    assert build.call_args.kwargs["service_name"] == "func-api-test"

    metrics.add("wns.channelthrottled")
    assert points(reader)[("wns.channelthrottled", ())] >= 1  # the process-wide counters: maybe counted before


def test_an_unusable_connection_string_is_logged_without_its_values(
    caplog: pytest.LogCaptureFixture, quiet_exporter: None, no_telemetry_left_behind: None
) -> None:
    bad = "InstrumentationKey=secret-looking-but-not-a-guid;IngestionEndpoint=https://ingest.invalid/"
    with caplog.at_level(logging.INFO, logger="pushfuncs.telemetry"):
        assert telemetry.configure_telemetry({CONNECTION_STRING: bad}) is None
    assert f"{CONNECTION_STRING} is unusable (ValueError" in caplog.text
    assert "secret-looking-but-not-a-guid" not in caplog.text


@pytest.mark.parametrize(
    ("authentication_string", "signs_in"),
    [
        ("Authorization=AAD;ClientId=11111111-2222-3333-4444-555555555555", True),
        ("clientid=11111111-2222-3333-4444-555555555555; authorization=aad", True),
        ("Authorization=AAD", True),  # the system-assigned identity
        ("", False),
        ("Authorization=Key", False),
    ],
)
def test_the_authentication_string_names_the_managed_identity(authentication_string: str, signs_in: bool) -> None:
    credential = telemetry.managed_identity_credential(authentication_string)
    assert isinstance(credential, ManagedIdentityCredential) if signs_in else credential is None


@dataclass
class Ingestion:
    url: str
    requests: list[tuple[str, list[dict[str, Any]]]] = field(default_factory=list)


@pytest.fixture
def ingestion() -> Iterator[Ingestion]:
    """A stand-in for the Application Insights ingestion endpoint, on a local port."""
    received: list[tuple[str, list[dict[str, Any]]]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            items = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            received.append((self.path, items))
            body = json.dumps({"itemsReceived": len(items), "itemsAccepted": len(items), "errors": []}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Ingestion(f"http://127.0.0.1:{server.server_address[1]}/", received)
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def exported(ingestion: Ingestion, quiet_exporter: None) -> Iterator[Ingestion]:
    """Telemetry configured against the local endpoint; shut down while the endpoint still runs."""
    assert telemetry.configure_telemetry({}) is None, "a provider was left configured before this test"
    env = {CONNECTION_STRING: f"InstrumentationKey={IKEY};IngestionEndpoint={ingestion.url}"}
    assert telemetry.configure_telemetry(env) is not None
    yield ingestion
    telemetry.shutdown_telemetry()


def test_a_forced_flush_posts_the_counters_to_the_ingestion_endpoint(exported: Ingestion) -> None:
    provider = telemetry.configure_telemetry({})  # already configured: the same provider
    assert provider is not None
    metrics.add("wns.expiredchannel")
    metrics.add("storage.table.post", 2)

    assert provider.force_flush()

    assert exported.requests, "nothing was posted"
    assert {path for path, _ in exported.requests} == {"/v2.1/track"}
    sent: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for _, items in exported.requests:
        for item in items:
            assert item["iKey"] == IKEY
            assert item["tags"]["ai.cloud.role"] == "pushfuncs"
            base = item["data"]["baseData"]
            for point in base["metrics"]:
                sent[(point["name"], tuple(sorted(base.get("properties", {}).items())))] = point["value"]
    # The process-wide counters: other tests may have counted these names before.
    assert sent[("wns.expiredchannel", ())] >= 1
    assert sent[("storage.requests", (("operation", "post"), ("service", "table")))] >= 2
