"""Build the async Table and Queue service clients from settings (Azurite or Azure)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from azure.core.pipeline.transport import AioHttpTransport
from azure.core.rest import HttpRequest
from azure.data.tables.aio import TableServiceClient
from azure.storage.queue import TextBase64EncodePolicy
from azure.storage.queue.aio import QueueServiceClient

from pushfuncs.config import ConfigurationError, Settings
from pushfuncs.metrics import metrics

# Fail fast enough for a waiting HTTP caller; retry dropped keep-alive connections.
CLIENT_OPTIONS = {"retry_total": 4, "retry_backoff_factor": 0.2, "connection_timeout": 5, "read_timeout": 15}


class CountingTransport(AioHttpTransport):
    """Counts storage requests (each is a billed transaction) in the app's metrics. A transport,
    not a policy: the SDKs' table and queue sub-clients share the transport, not the policies."""

    def __init__(self, service: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._service = service

    async def send(self, request: HttpRequest, **config: Any) -> Any:  # type: ignore[override]
        metrics.add(f"storage.{self._service}.{request.method.lower()}")
        return await super().send(request, **config)


_PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")


def _transport(service: str) -> CountingTransport:
    # With environment settings on, aiohttp reads the proxy variables and ~/.netrc again for
    # every request (measured: a sizeable share of a storage call's CPU); only pay for it where
    # a proxy is configured.
    return CountingTransport(service, use_env_settings=any(os.environ.get(name) for name in _PROXY_VARIABLES))


@dataclass
class StorageClients:
    tables: TableServiceClient
    queues: QueueServiceClient

    async def close(self) -> None:
        await self.tables.close()
        await self.queues.close()


def create_storage_clients(settings: Settings) -> StorageClients:
    """Connection string locally (Azurite); the managed identity in Azure."""
    if settings.storage_connection_string:
        tables = TableServiceClient.from_connection_string(
            settings.storage_connection_string, transport=_transport("table"), **CLIENT_OPTIONS
        )
        queues = QueueServiceClient.from_connection_string(
            settings.storage_connection_string,
            message_encode_policy=TextBase64EncodePolicy(),
            transport=_transport("queue"),
            **CLIENT_OPTIONS,
        )
        return StorageClients(tables, queues)
    if not settings.storage_account_name:
        raise ConfigurationError("set AzureWebJobsStorage (connection string) or AzureWebJobsStorage__accountName")
    from azure.identity.aio import DefaultAzureCredential

    credential = DefaultAzureCredential(managed_identity_client_id=settings.storage_client_id)
    account = settings.storage_account_name
    tables = TableServiceClient(
        f"https://{account}.table.core.windows.net",
        credential=credential,
        transport=_transport("table"),
        **CLIENT_OPTIONS,
    )
    queues = QueueServiceClient(
        f"https://{account}.queue.core.windows.net",
        credential=credential,
        message_encode_policy=TextBase64EncodePolicy(),
        transport=_transport("queue"),
        **CLIENT_OPTIONS,
    )
    return StorageClients(tables, queues)
