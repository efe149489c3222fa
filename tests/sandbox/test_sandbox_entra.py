"""The Entra ID token endpoint, raw and through azure-identity's credentials."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import jwt
import pytest
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import CertificateCredential, ClientSecretCredential
from azure.identity.aio import CertificateCredential as AsyncCertificateCredential
from azure.identity.aio import ClientSecretCredential as AsyncClientSecretCredential
from conftest import ClientCertificate, Sender, make_client_certificate
from cryptography.hazmat.primitives import hashes

from sandbox import SandboxClient, SandboxHandle, start_sandbox

WNS_SCOPE = "https://wns.windows.com/.default"
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def token_endpoint(sandbox: SandboxHandle) -> str:
    return f"{sandbox.url}/{sandbox.tenant_id}/oauth2/v2.0/token"


def form(sandbox: SandboxHandle, **overrides: str | None) -> dict[str, str]:
    fields: dict[str, str | None] = {
        "grant_type": "client_credentials",
        "client_id": sandbox.client_id,
        "client_secret": sandbox.client_secret,
        "scope": WNS_SCOPE,
    }
    fields.update(overrides)
    return {k: v for k, v in fields.items() if v is not None}


def test_documented_token_response(http: httpx.Client, sandbox: SandboxHandle) -> None:
    before = int(time.time())
    response = http.post(token_endpoint(sandbox), data=form(sandbox))
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == "86399"
    assert body["ext_expires_in"] == "86399"
    assert before + 86399 <= int(body["expires_on"]) <= int(time.time()) + 86399
    assert isinstance(body["access_token"], str)
    assert len(body["access_token"]) >= 64
    assert sandbox.client_secret not in body["access_token"]
    assert response.headers["Cache-Control"].startswith("no-store")


def test_scope_with_trailing_slash_from_the_quickstart(http: httpx.Client, sandbox: SandboxHandle) -> None:
    response = http.post(token_endpoint(sandbox), data=form(sandbox, scope="https://wns.windows.com/.default/"))
    assert response.status_code == 200


ERRORS: list[tuple[str, dict[str, str | None], int, str, int]] = [
    ("wrong secret", {"client_secret": "nope"}, 401, "invalid_client", 7000215),
    ("no secret", {"client_secret": None}, 401, "invalid_client", 7000218),
    ("unknown client", {"client_id": "someone-else"}, 400, "unauthorized_client", 700016),
    ("no client", {"client_id": None}, 400, "invalid_request", 900144),
    ("no grant", {"grant_type": None}, 400, "invalid_request", 900144),
    ("authorization code grant", {"grant_type": "authorization_code"}, 400, "unsupported_grant_type", 70003),
    ("password grant without user", {"grant_type": "password"}, 400, "invalid_request", 900144),
    ("no scope", {"scope": None}, 400, "invalid_request", 900144),
    ("scope without .default", {"scope": "https://wns.windows.com/notify"}, 400, "invalid_scope", 1002012),
    ("legacy scope", {"scope": "notify.windows.com"}, 400, "invalid_scope", 1002012),
    ("unknown resource", {"scope": "https://graph.microsoft.com/.default"}, 400, "invalid_resource", 500011),
    ("two resources", {"scope": f"{WNS_SCOPE} https://vault.azure.net/.default"}, 400, "invalid_scope", 70011),
    (
        "bad assertion type",
        {"client_assertion_type": "urn:other", "client_assertion": "x"},
        400,
        "invalid_request",
        90014,
    ),
]


@pytest.mark.parametrize(("overrides", "status", "error", "code"), [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS])
def test_token_errors(
    http: httpx.Client, sandbox: SandboxHandle, overrides: dict[str, str | None], status: int, error: str, code: int
) -> None:
    response = http.post(token_endpoint(sandbox), data=form(sandbox, **overrides))
    assert response.status_code == status
    body = response.json()
    assert body["error"] == error
    assert body["error_codes"] == [code]
    assert body["error_description"].startswith(f"AADSTS{code}: ")
    assert "Trace ID: " in body["error_description"]
    assert "access_token" not in body


def test_unknown_tenant(http: httpx.Client, sandbox: SandboxHandle) -> None:
    response = http.post(f"{sandbox.url}/other-tenant/oauth2/v2.0/token", data=form(sandbox))
    assert response.status_code == 400
    assert response.json()["error_codes"] == [90002]
    discovery = http.get(f"{sandbox.url}/other-tenant/v2.0/.well-known/openid-configuration")
    assert discovery.status_code == 400
    assert discovery.json()["error"] == "invalid_tenant"


def test_openid_configuration(http: httpx.Client, sandbox: SandboxHandle) -> None:
    config = http.get(f"{sandbox.url}/{sandbox.tenant_id}/v2.0/.well-known/openid-configuration").json()
    assert config["token_endpoint"] == token_endpoint(sandbox)
    assert config["issuer"] == f"{sandbox.url}/{sandbox.tenant_id}/v2.0"
    for key in ("authorization_endpoint", "jwks_uri", "device_authorization_endpoint"):
        assert config[key].startswith(f"{sandbox.url}/{sandbox.tenant_id}/")
    keys = http.get(config["jwks_uri"]).json()["keys"]
    assert keys and all(k["kty"] == "RSA" and k["use"] == "sig" and k["kid"] for k in keys)


def _secret_credential(sandbox: SandboxHandle, secret: str | None = None) -> ClientSecretCredential:
    return ClientSecretCredential(
        sandbox.tenant_id,
        sandbox.client_id,
        secret or sandbox.client_secret,
        authority=sandbox.authority,
        disable_instance_discovery=True,
        connection_verify=str(sandbox.ca_path),
    )


def test_client_secret_credential_accepts_string_expires_in(
    sandbox: SandboxHandle, sender: Sender, channel: dict[str, Any]
) -> None:
    with _secret_credential(sandbox) as credential:
        token = credential.get_token(WNS_SCOPE)
        again = credential.get_token(WNS_SCOPE)
    assert abs(token.expires_on - (time.time() + 86399)) < 60
    assert again.token == token.token
    sender.token = token.token
    assert sender.post(channel["channelUri"]).status_code == 200


def test_client_secret_credential_wrong_secret(sandbox: SandboxHandle) -> None:
    with _secret_credential(sandbox, "wrong") as credential, pytest.raises(ClientAuthenticationError) as info:
        credential.get_token(WNS_SCOPE)
    assert "AADSTS7000215" in str(info.value)


async def test_async_client_secret_credential(sandbox: SandboxHandle, sender: Sender, channel: dict[str, Any]) -> None:
    async with AsyncClientSecretCredential(
        sandbox.tenant_id,
        sandbox.client_id,
        sandbox.client_secret,
        authority=sandbox.authority,
        disable_instance_discovery=True,
        connection_verify=str(sandbox.ca_path),
    ) as credential:
        token = await credential.get_token(WNS_SCOPE)
    assert abs(token.expires_on - (time.time() + 86399)) < 60
    sender.token = token.token
    assert sender.post(channel["channelUri"]).status_code == 200


def test_certificate_credential(
    sandbox: SandboxHandle, client_certificate: ClientCertificate, sender: Sender, channel: dict[str, Any]
) -> None:
    with CertificateCredential(
        sandbox.tenant_id,
        sandbox.client_id,
        str(client_certificate.pem_path),
        authority=sandbox.authority,
        disable_instance_discovery=True,
        connection_verify=str(sandbox.ca_path),
    ) as credential:
        token = credential.get_token(WNS_SCOPE)
    sender.token = token.token
    assert sender.post(channel["channelUri"]).status_code == 200


async def test_async_certificate_credential(sandbox: SandboxHandle, client_certificate: ClientCertificate) -> None:
    async with AsyncCertificateCredential(
        sandbox.tenant_id,
        sandbox.client_id,
        str(client_certificate.pem_path),
        authority=sandbox.authority,
        disable_instance_discovery=True,
        connection_verify=str(sandbox.ca_path),
    ) as credential:
        token = await credential.get_token(WNS_SCOPE)
    assert token.token


def test_unregistered_certificate_is_rejected(sandbox: SandboxHandle, tmp_path: Any) -> None:
    stranger = make_client_certificate(tmp_path, "stranger")
    with (
        CertificateCredential(
            sandbox.tenant_id,
            sandbox.client_id,
            str(stranger.pem_path),
            authority=sandbox.authority,
            disable_instance_discovery=True,
            connection_verify=str(sandbox.ca_path),
        ) as credential,
        pytest.raises(ClientAuthenticationError) as info,
    ):
        credential.get_token(WNS_SCOPE)
    assert "AADSTS700027" in str(info.value)


def _assertion(sandbox: SandboxHandle, cert: ClientCertificate, alg: str = "RS256", **claims: Any) -> str:
    now = int(time.time())
    payload = {
        "aud": token_endpoint(sandbox),
        "iss": sandbox.client_id,
        "sub": sandbox.client_id,
        "jti": str(uuid.uuid4()),
        "iat": now,
        "nbf": now,
        "exp": now + 600,
    } | claims
    thumbprint = jwt.utils.base64url_encode(cert.cert.fingerprint(hashes.SHA256())).decode()
    return jwt.encode(payload, cert.key, algorithm=alg, headers={"x5t#S256": thumbprint})


@pytest.mark.parametrize(
    ("claims", "status", "code"),
    [
        ({}, 200, None),
        ({"alg": "PS256"}, 200, None),
        ({"exp": int(time.time()) - 3600}, 401, 700024),
        ({"aud": "https://elsewhere.example/token"}, 401, 50013),
        ({"iss": "another-client"}, 401, 700021),
    ],
)
def test_client_assertion(
    http: httpx.Client,
    sandbox: SandboxHandle,
    client_certificate: ClientCertificate,
    claims: dict[str, Any],
    status: int,
    code: int | None,
) -> None:
    alg = claims.pop("alg", "RS256")
    assertion = _assertion(sandbox, client_certificate, alg, **claims)
    data = form(sandbox, client_secret=None, client_assertion_type=JWT_BEARER, client_assertion=assertion)
    response = http.post(token_endpoint(sandbox), data=data)
    assert response.status_code == status
    if code is not None:
        assert response.json()["error_codes"] == [code]


def test_tampered_assertion_is_rejected(
    http: httpx.Client, sandbox: SandboxHandle, client_certificate: ClientCertificate
) -> None:
    header, _payload, signature = _assertion(sandbox, client_certificate).split(".")
    forged_payload = jwt.utils.base64url_encode(b'{"iss":"x"}').decode()
    data = form(
        sandbox,
        client_secret=None,
        client_assertion_type=JWT_BEARER,
        client_assertion=f"{header}.{forged_payload}.{signature}",
    )
    response = http.post(token_endpoint(sandbox), data=data)
    assert response.status_code == 401
    assert response.json()["error_codes"] == [700027]


def test_token_options(tmp_path: Any) -> None:
    with start_sandbox(state_dir=tmp_path, token_lifetime=600, expires_in_as_string=False) as sandbox:
        with sandbox.client() as control:
            body = control.request_token(sandbox.tenant_id, sandbox.client_id, sandbox.client_secret).json()
        assert body["expires_in"] == 600
        assert body["ext_expires_in"] == 600
        assert "expires_on" not in body


def test_stats_count_token_requests(control: SandboxClient, sandbox: SandboxHandle) -> None:
    before = control.stats()["tokenRequests"]
    control.request_token(sandbox.tenant_id, sandbox.client_id, sandbox.client_secret)
    control.request_token(sandbox.tenant_id, sandbox.client_id, "wrong")
    after = control.stats()["tokenRequests"]
    assert after["byGrant"]["client_credentials"] == before["byGrant"]["client_credentials"] + 2
    assert after["issued"] == before["issued"] + 1
    assert after["rejected"] == before["rejected"] + 1
