"""Export the app's counters (pushfuncs.metrics) to Application Insights with OpenTelemetry.

`configure_telemetry` runs once per worker process, from function_app.py. Without
APPLICATIONINSIGHTS_CONNECTION_STRING (local runs) it does nothing: the counters stay readable at
GET /api/metrics. With it, an OpenTelemetry SDK MeterProvider sends them every minute through
the Azure Monitor exporter, signed in as the managed identity that
APPLICATIONINSIGHTS_AUTHENTICATION_STRING names (the component refuses key-only ingestion).

The provider is not made the global OpenTelemetry one: it serves these counters only, so a test
can build, use and shut down its own.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING

from pushfuncs.metrics import METER_NAME, metrics

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential
    from opentelemetry.sdk.metrics import MeterProvider

logger = logging.getLogger(__name__)

CONNECTION_STRING = "APPLICATIONINSIGHTS_CONNECTION_STRING"
AUTHENTICATION_STRING = "APPLICATIONINSIGHTS_AUTHENTICATION_STRING"
EXPORT_INTERVAL_MILLIS = 60_000
DEFAULT_SERVICE_NAME = "pushfuncs"

_lock = threading.Lock()
_provider: MeterProvider | None = None


def configure_telemetry(env: Mapping[str, str]) -> MeterProvider | None:
    """Export the counters when `env` has a connection string; the provider, or None.

    Idempotent. Never raises: a setting it cannot use is logged (never its value) and the app
    runs on with local counters only.
    """
    global _provider
    with _lock:
        if _provider is not None:
            return _provider
        connection_string = env.get(CONNECTION_STRING, "").strip()
        if not connection_string:
            logger.info("%s is not set: metrics stay local (GET /api/metrics)", CONNECTION_STRING)
            return None
        try:
            provider = build_meter_provider(
                connection_string,
                credential=managed_identity_credential(env.get(AUTHENTICATION_STRING, "")),
                # The Functions host reports under the site's name too: one cloud_RoleName.
                service_name=env.get("WEBSITE_SITE_NAME") or DEFAULT_SERVICE_NAME,
            )
            metrics.bind_meter(provider.get_meter(METER_NAME))
        except Exception as error:
            logger.error(
                "metrics are not exported to Application Insights: %s is unusable (%s)",
                CONNECTION_STRING,
                _redacted(f"{type(error).__name__}: {error}", connection_string),
            )
            return None
        _provider = provider
        logger.info("metrics are exported to Application Insights every %d s", EXPORT_INTERVAL_MILLIS // 1000)
        return provider


def shutdown_telemetry() -> None:
    """Export what is left and stop; the counters report on the global OpenTelemetry meter again."""
    global _provider
    with _lock:
        provider, _provider = _provider, None
    if provider is not None:
        metrics.bind_meter(None)
        provider.shutdown()


def build_meter_provider(
    connection_string: str,
    *,
    credential: TokenCredential | None = None,
    service_name: str = DEFAULT_SERVICE_NAME,
    export_interval_millis: int = EXPORT_INTERVAL_MILLIS,
) -> MeterProvider:
    """A MeterProvider exporting to the Application Insights resource of `connection_string`."""
    # Imported here: the exporter is slow to import and only needed in Azure.
    from azure.monitor.opentelemetry.exporter import AzureMonitorMetricExporter
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource

    # credential=None is passed on purpose: the exporter would otherwise read os.environ itself.
    exporter = AzureMonitorMetricExporter(connection_string=connection_string, credential=credential)
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=export_interval_millis)
    return MeterProvider(metric_readers=[reader], resource=Resource.create({SERVICE_NAME: service_name}))


def managed_identity_credential(authentication_string: str) -> TokenCredential | None:
    """The identity `Authorization=AAD[;ClientId=<client id>]` names, as the Functions host reads it."""
    fields = {}
    for part in authentication_string.split(";"):
        key, _, value = part.partition("=")
        fields[key.strip().lower()] = value.strip()
    if fields.get("authorization", "").upper() != "AAD":
        if authentication_string.strip():
            logger.warning("%s is not Authorization=AAD: ignored", AUTHENTICATION_STRING)
        return None
    from azure.identity import ManagedIdentityCredential

    client_id = fields.get("clientid")
    return ManagedIdentityCredential(client_id=client_id) if client_id else ManagedIdentityCredential()


def _redacted(text: str, connection_string: str) -> str:
    """`text` without the connection string or any of its values (the instrumentation key)."""
    values = [connection_string, *(part.partition("=")[2].strip() for part in connection_string.split(";"))]
    for value in sorted((v for v in values if len(v) >= 8), key=len, reverse=True):
        text = text.replace(value, "***")
    return text
