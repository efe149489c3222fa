"""The sandbox's Entra ID signs access tokens for the push API: devices (password grant) and backends."""

from __future__ import annotations

import time

import httpx
import jwt
import pytest

from sandbox import SandboxClient, SandboxHandle
from sandbox.config import API_APP_ID_URI, API_CLIENT_ID, DEVICE_CLIENT_ID


def signing_keys(http: httpx.Client, sandbox: SandboxHandle) -> dict[str, jwt.PyJWK]:
    keys = http.get(f"{sandbox.url}/{sandbox.tenant_id}/discovery/v2.0/keys").json()["keys"]
    return {key["kid"]: jwt.PyJWK(key, "RS256") for key in keys}


def verified(token: str, http: httpx.Client, sandbox: SandboxHandle) -> dict[str, object]:
    kid = jwt.get_unverified_header(token)["kid"]
    key = signing_keys(http, sandbox)[kid]
    return jwt.decode(
        token,
        key,
        algorithms=["RS256"],
        audience=API_CLIENT_ID,
        issuer=f"{sandbox.url}/{sandbox.tenant_id}/v2.0",
        options={"require": ["exp", "nbf", "iat", "iss", "aud", "tid", "oid"]},
    )


def test_a_user_token_is_a_signed_delegated_token(
    control: SandboxClient, http: httpx.Client, sandbox: SandboxHandle
) -> None:
    claims = verified(control.user_token("alice"), http, sandbox)
    assert claims["scp"] == "Installations.ReadWrite"
    assert claims["azp"] == DEVICE_CLIENT_ID
    assert claims["tid"] == sandbox.tenant_id
    assert claims["ver"] == "2.0"
    assert "roles" not in claims
    assert claims["nbf"] <= time.time() < claims["exp"] <= time.time() + 3600
    # One object id per user, stable across sign-ins, different between users.
    assert verified(control.user_token("Alice"), http, sandbox)["oid"] == claims["oid"]
    assert verified(control.user_token("bob"), http, sandbox)["oid"] != claims["oid"]


def test_a_backend_token_is_app_only_with_the_role(
    control: SandboxClient, http: httpx.Client, sandbox: SandboxHandle
) -> None:
    claims = verified(control.backend_token(sandbox.client_id, sandbox.client_secret), http, sandbox)
    assert claims["roles"] == ["Installations.Manage"]
    assert claims["idtyp"] == "app"
    assert "scp" not in claims


def test_wrong_password_and_wrong_scope_are_refused(control: SandboxClient, sandbox: SandboxHandle) -> None:
    with pytest.raises(httpx.HTTPStatusError) as refused:
        control.user_token("alice", password="guess")
    assert refused.value.response.json()["error_codes"] == [50126]
    response = control.request_token(
        sandbox.tenant_id, sandbox.client_id, sandbox.client_secret, "api://other/.default"
    )
    assert response.json()["error"] == "invalid_resource"
    response = control.request_token(sandbox.tenant_id, "someone", "x", f"{API_APP_ID_URI}/.default")
    assert response.status_code == 400


def test_rotation_signs_with_a_new_published_key(
    control: SandboxClient, http: httpx.Client, sandbox: SandboxHandle
) -> None:
    before = jwt.get_unverified_header(control.user_token("alice"))["kid"]
    kid = control.rotate_signing_key()
    after = control.user_token("alice")
    assert jwt.get_unverified_header(after)["kid"] == kid != before
    published = signing_keys(http, sandbox)
    assert set(published) == {kid, before}  # the previous key stays published during the rollover
    assert verified(after, http, sandbox)["scp"] == "Installations.ReadWrite"


def test_the_next_token_can_be_shaped_once(control: SandboxClient, http: httpx.Client, sandbox: SandboxHandle) -> None:
    control.shape_next_token(expiresIn=-600, audience="api://someone-else", tenant="other-tenant")
    shaped = jwt.decode(control.user_token("alice"), options={"verify_signature": False})
    assert shaped["exp"] < time.time() and shaped["aud"] == "api://someone-else"
    assert shaped["tid"] == "other-tenant" and shaped["iss"].endswith("/other-tenant/v2.0")
    assert verified(control.user_token("alice"), http, sandbox)["aud"] == API_CLIENT_ID
    with pytest.raises(httpx.HTTPStatusError):
        control.shape_next_token(lifetime=5)
