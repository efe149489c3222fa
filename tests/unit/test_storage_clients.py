"""The storage clients read proxy settings per request only where a proxy is configured."""

from __future__ import annotations

import pytest

from pushfuncs.config import load_settings
from pushfuncs.storage.clients import create_storage_clients

AZURITE = (
    "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;"
    "TableEndpoint=http://127.0.0.1:10002/devstoreaccount1;QueueEndpoint=http://127.0.0.1:10001/devstoreaccount1;"
)
PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")


def _uses_environment(monkeypatch: pytest.MonkeyPatch, **variables: str) -> list[bool]:
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    clients = create_storage_clients(load_settings({"AzureWebJobsStorage": AZURITE}))
    services = (clients.tables, clients.queues)
    return [service._client._client._pipeline._transport._use_env_settings for service in services]


def test_no_proxy_configured_means_no_environment_lookups_per_request(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _uses_environment(monkeypatch) == [False, False]


@pytest.mark.parametrize("name", PROXY_VARIABLES)
def test_a_configured_proxy_is_honoured(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    assert _uses_environment(monkeypatch, **{name: "http://proxy.example:3128"}) == [True, True]
