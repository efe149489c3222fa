"""Key Vault secrets through the real SecretClient (sync and aio), and the managed-identity endpoint."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator

import httpx
import pytest
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ResourceNotFoundError
from azure.identity import ClientSecretCredential, DefaultAzureCredential, ManagedIdentityCredential
from azure.identity.aio import ClientSecretCredential as AsyncClientSecretCredential
from azure.identity.aio import ManagedIdentityCredential as AsyncManagedIdentityCredential
from azure.keyvault.secrets import SecretClient
from azure.keyvault.secrets.aio import SecretClient as AsyncSecretClient
from conftest import fetch_token

from sandbox import SandboxClient, SandboxHandle

VAULT_SCOPE = "https://vault.azure.net/.default"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def credential(sandbox: SandboxHandle) -> Iterator[ClientSecretCredential]:
    with ClientSecretCredential(
        sandbox.tenant_id,
        sandbox.client_id,
        sandbox.client_secret,
        authority=sandbox.authority,
        disable_instance_discovery=True,
        connection_verify=str(sandbox.ca_path),
    ) as cred:
        yield cred


@pytest.fixture
def secrets(sandbox: SandboxHandle, credential: ClientSecretCredential) -> Iterator[SecretClient]:
    with SecretClient(
        sandbox.key_vault_url, credential, verify_challenge_resource=False, connection_verify=str(sandbox.ca_path)
    ) as client:
        yield client


@pytest.fixture
def managed_identity_env(sandbox: SandboxHandle, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "AZURE_CLIENT_ID",
        "AZURE_TENANT_ID",
        "AZURE_CLIENT_SECRET",
        "AZURE_FEDERATED_TOKEN_FILE",
        "MSI_ENDPOINT",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("IDENTITY_ENDPOINT", sandbox.identity_endpoint)
    monkeypatch.setenv("IDENTITY_HEADER", sandbox.identity_header)
    # The requests-based sync pipeline reads this on every request, as in the Functions host.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(sandbox.ca_path))


def test_set_get_round_trip(secrets: SecretClient, control: SandboxClient) -> None:
    name = unique("wns-access-token")
    expires = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(hours=24)
    not_before = expires - dt.timedelta(days=1)
    challenges = control.stats()["keyVault"]["challenges"]

    stored = secrets.set_secret(
        name, "eyJ0eXAi.sample", content_type="application/jwt", expires_on=expires, not_before=not_before,
        tags={"source": "entra"},
    )  # fmt: skip
    assert control.stats()["keyVault"]["challenges"] == challenges + 1
    got = secrets.get_secret(name)
    assert got.value == "eyJ0eXAi.sample"
    assert got.name == name
    assert got.properties.version == stored.properties.version
    assert got.properties.content_type == "application/jwt"
    assert got.properties.expires_on == expires
    assert got.properties.not_before == not_before
    assert got.properties.enabled is True
    assert got.properties.tags == {"source": "entra"}
    assert got.properties.recovery_level == "Recoverable+Purgeable"
    assert got.properties.created_on is not None
    assert got.properties.updated_on is not None


def test_versions(secrets: SecretClient) -> None:
    name = unique("rotating")
    first = secrets.set_secret(name, "one")
    second = secrets.set_secret(name, "two")
    assert secrets.get_secret(name).value == "two"
    assert secrets.get_secret(name, first.properties.version).value == "one"
    versions = {p.version for p in secrets.list_properties_of_secret_versions(name)}
    assert versions == {first.properties.version, second.properties.version}
    names = {p.name for p in secrets.list_properties_of_secrets()}
    assert name in names


def test_missing_secret_and_version(secrets: SecretClient) -> None:
    with pytest.raises(ResourceNotFoundError) as info:
        secrets.get_secret(unique("missing"))
    assert info.value.error is not None
    assert info.value.error.code == "SecretNotFound"
    name = unique("present")
    secrets.set_secret(name, "v")
    with pytest.raises(ResourceNotFoundError):
        secrets.get_secret(name, uuid.uuid4().hex)


def test_update_properties_and_disable(secrets: SecretClient) -> None:
    name = unique("switch")
    secrets.set_secret(name, "v", tags={"a": "1"})
    updated = secrets.update_secret_properties(name, content_type="text/plain", tags={"b": "2"})
    assert updated.content_type == "text/plain"
    assert updated.tags == {"b": "2"}
    secrets.update_secret_properties(name, enabled=False)
    with pytest.raises(HttpResponseError) as info:
        secrets.get_secret(name)
    assert info.value.status_code == 403


def test_delete_recover_and_purge(secrets: SecretClient) -> None:
    name = unique("doomed")
    secrets.set_secret(name, "v")
    deleted = secrets.begin_delete_secret(name).result()
    assert deleted.name == name
    assert deleted.recovery_id
    with pytest.raises(ResourceNotFoundError):
        secrets.get_secret(name)
    with pytest.raises(HttpResponseError) as info:
        secrets.set_secret(name, "again")
    assert info.value.status_code == 409
    secrets.begin_recover_deleted_secret(name).result()
    assert secrets.get_secret(name).value == "v"
    secrets.begin_delete_secret(name).result()
    secrets.purge_deleted_secret(name)
    assert secrets.set_secret(name, "fresh").value == "fresh"


def test_bad_secret_name(secrets: SecretClient) -> None:
    with pytest.raises(HttpResponseError) as info:
        secrets.set_secret("not_allowed", "v")
    assert info.value.status_code == 400


async def test_async_secret_client(sandbox: SandboxHandle) -> None:
    name = unique("async")
    async with (
        AsyncClientSecretCredential(
            sandbox.tenant_id,
            sandbox.client_id,
            sandbox.client_secret,
            authority=sandbox.authority,
            disable_instance_discovery=True,
            connection_verify=str(sandbox.ca_path),
        ) as credential,
        AsyncSecretClient(
            sandbox.key_vault_url, credential, verify_challenge_resource=False, connection_verify=str(sandbox.ca_path)
        ) as client,
    ):
        await client.set_secret(name, "first", tags={"k": "v"})
        await client.set_secret(name, "second")
        secret = await client.get_secret(name)
        assert secret.value == "second"
        versions = [p async for p in client.list_properties_of_secret_versions(name)]
        assert len(versions) == 2
        with pytest.raises(ResourceNotFoundError):
            await client.get_secret(unique("missing"))


@pytest.mark.usefixtures("managed_identity_env")
def test_default_credential_through_managed_identity(sandbox: SandboxHandle, control: SandboxClient) -> None:
    before = control.stats()["msiRequests"].get("issued", 0)
    name = unique("via-msi")
    with (
        DefaultAzureCredential() as credential,
        SecretClient(
            sandbox.key_vault_url, credential, verify_challenge_resource=False, connection_verify=str(sandbox.ca_path)
        ) as client,
    ):
        client.set_secret(name, "from-msi")
        assert client.get_secret(name).value == "from-msi"
    assert control.stats()["msiRequests"]["issued"] == before + 1


@pytest.mark.usefixtures("managed_identity_env")
def test_managed_identity_credential(sandbox: SandboxHandle) -> None:
    with ManagedIdentityCredential() as credential:
        token = credential.get_token(VAULT_SCOPE)
    assert token.token
    assert token.expires_on > dt.datetime.now(dt.UTC).timestamp() + 3600


@pytest.mark.usefixtures("managed_identity_env")
async def test_async_managed_identity_credential(sandbox: SandboxHandle) -> None:
    async with AsyncManagedIdentityCredential(connection_verify=str(sandbox.ca_path)) as credential:
        token = await credential.get_token(VAULT_SCOPE)
    assert token.token


def test_managed_identity_wrong_header(sandbox: SandboxHandle, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IDENTITY_ENDPOINT", sandbox.identity_endpoint)
    monkeypatch.setenv("IDENTITY_HEADER", "wrong")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(sandbox.ca_path))
    with ManagedIdentityCredential() as credential, pytest.raises(ClientAuthenticationError):
        credential.get_token(VAULT_SCOPE)


@pytest.mark.parametrize(
    ("params", "header", "status"),
    [
        ({"resource": "https://vault.azure.net", "api-version": "2019-08-01"}, "sandbox-identity-header", 200),
        ({"resource": "https://vault.azure.net", "api-version": "2019-08-01"}, None, 400),
        ({"resource": "https://vault.azure.net", "api-version": "2019-08-01"}, "wrong", 401),
        ({"resource": "https://vault.azure.net", "api-version": "2017-09-01"}, "sandbox-identity-header", 400),
        ({"resource": "https://graph.microsoft.com", "api-version": "2019-08-01"}, "sandbox-identity-header", 400),
        (
            {"resource": "https://vault.azure.net", "api-version": "2019-08-01", "client_id": "other"},
            "sandbox-identity-header",
            400,
        ),
    ],
)
def test_managed_identity_endpoint(
    http: httpx.Client, sandbox: SandboxHandle, params: dict[str, str], header: str | None, status: int
) -> None:
    headers = {"X-IDENTITY-HEADER": header} if header else {}
    response = http.get(sandbox.identity_endpoint, params=params, headers=headers)
    assert response.status_code == status
    body = response.json()
    if status == 200:
        assert body["resource"] == "https://vault.azure.net"
        assert body["token_type"] == "Bearer"
        assert body["client_id"] == sandbox.managed_identity_client_id
        assert body["expires_on"].isdigit()
    else:
        assert body["statusCode"] == status
        assert body["message"]


def test_challenge_header(http: httpx.Client, sandbox: SandboxHandle) -> None:
    response = http.get(f"{sandbox.url}/secrets/anything/", params={"api-version": "2026-04-01"})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == (
        f'Bearer authorization="{sandbox.url}/{sandbox.tenant_id}", resource="https://vault.azure.net"'
    )
    assert response.json()["error"]["code"] == "Unauthorized"


def test_only_vault_tokens_are_accepted(http: httpx.Client, sandbox: SandboxHandle, control: SandboxClient) -> None:
    url = f"{sandbox.url}/secrets"
    params = {"api-version": "2026-04-01"}
    wns_token = fetch_token(control, sandbox)
    for token in ("made-up", wns_token):
        response = http.get(url, params=params, headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401
        assert "WWW-Authenticate" in response.headers
    vault_token = fetch_token(control, sandbox, VAULT_SCOPE)
    assert http.get(url, params=params, headers={"Authorization": f"Bearer {vault_token}"}).status_code == 200
    assert http.get(url, headers={"Authorization": f"Bearer {vault_token}"}).status_code == 400
