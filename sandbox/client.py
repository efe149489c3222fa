"""A small synchronous client for the sandbox's /_sandbox control endpoints."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import httpx

from .config import API_APP_ID_URI, API_DEVICE_SCOPE, DEVICE_CLIENT_ID, USER_PASSWORD

WNS_SCOPE = "https://wns.windows.com/.default"


class SandboxClient:
    def __init__(self, url: str, ca_path: str | Path, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        context = ssl.create_default_context(cafile=str(ca_path))
        self._http = httpx.Client(base_url=self.url, verify=context, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> SandboxClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, method: str, path: str, json: Any = None) -> Any:
        response = self._http.request(method, path, json=json)
        response.raise_for_status()
        return response.json() if response.content else None

    def info(self) -> dict[str, Any]:
        return self._call("GET", "/_sandbox")

    def create_channel(self, expires_in: float | None = None, client_id: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {}
        if expires_in is not None:
            body["expiresInSeconds"] = expires_in
        if client_id is not None:
            body["clientId"] = client_id
        return self._call("POST", "/_sandbox/channels", body)

    def channel(self, channel_id: str) -> dict[str, Any]:
        return self._call("GET", f"/_sandbox/channels/{channel_id}")

    def inbox(self, channel_id: str) -> list[dict[str, Any]]:
        return self._call("GET", f"/_sandbox/channels/{channel_id}/inbox")

    def clear_inbox(self, channel_id: str) -> None:
        self._call("DELETE", f"/_sandbox/channels/{channel_id}/inbox")

    def inject_faults(self, channel_id: str, rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return self._call("POST", f"/_sandbox/channels/{channel_id}/faults", rules)["pending"]

    def clear_faults(self, channel_id: str) -> None:
        self._call("DELETE", f"/_sandbox/channels/{channel_id}/faults")

    def expire_channel(self, channel_id: str) -> dict[str, Any]:
        return self._call("POST", f"/_sandbox/channels/{channel_id}/expire")

    def delete_channel(self, channel_id: str) -> None:
        self._call("DELETE", f"/_sandbox/channels/{channel_id}")

    def revoke_tokens(self) -> int:
        return self._call("POST", "/_sandbox/tokens/revoke")["revoked"]

    def expire_tokens(self) -> int:
        return self._call("POST", "/_sandbox/tokens/expire")["expired"]

    def set_fault_mix(
        self,
        mix: dict[str, float] | None = None,
        seed: int | str | None = None,
        retry_after: int | None = None,
        timeout_seconds: float | None = None,
    ) -> None:
        """Apply a random mix of outcomes to all sends; with no mix, clear it."""
        spec: dict[str, Any] = {}
        if mix:
            spec["mix"] = mix
            for key, value in (("seed", seed), ("retryAfter", retry_after), ("timeoutSeconds", timeout_seconds)):
                if value is not None:
                    spec[key] = value
        self._call("POST", "/_sandbox/faults", spec)

    def signing_keys(self) -> list[dict[str, Any]]:
        """The JWKS the tenant publishes for API tokens."""
        return self._call("GET", f"/{self.info()['tenantId']}/discovery/v2.0/keys")["keys"]

    def rotate_signing_key(self) -> str:
        """Sign API tokens with a new key from now on; returns its kid."""
        return self._call("POST", "/_sandbox/entra/keys/rotate")["kid"]

    def shape_next_token(self, **shape: Any) -> None:
        """Change the next API token: expiresIn, notBeforeIn, audience, issuer, tenant, scope, roles."""
        self._call("POST", "/_sandbox/entra/next-token", shape)

    def user_token(self, username: str, password: str = USER_PASSWORD) -> str:
        """A device's access token for the API, for a test user, from the real token endpoint."""
        tenant = self.info()["tenantId"]
        response = self._http.post(
            f"/{tenant}/oauth2/v2.0/token",
            data={
                "grant_type": "password",
                "client_id": DEVICE_CLIENT_ID,
                "username": username,
                "password": password,
                "scope": f"{API_APP_ID_URI}/{API_DEVICE_SCOPE} openid profile offline_access",
            },
        )
        response.raise_for_status()
        return str(response.json()["access_token"])

    def backend_token(self, client_id: str, client_secret: str) -> str:
        """An app-only access token for the API (with its backend app role)."""
        tenant = self.info()["tenantId"]
        response = self.request_token(tenant, client_id, client_secret, f"{API_APP_ID_URI}/.default")
        response.raise_for_status()
        return str(response.json()["access_token"])

    def stats(self) -> dict[str, Any]:
        return self._call("GET", "/_sandbox/stats")

    def reset(self) -> None:
        self._call("POST", "/_sandbox/reset")

    def request_token(
        self, tenant_id: str, client_id: str, client_secret: str, scope: str = WNS_SCOPE
    ) -> httpx.Response:
        """POST the Entra ID client-credentials request the WNS quickstart documents; returns the raw response."""
        return self._http.post(
            f"/{tenant_id}/oauth2/v2.0/token",
            data={
                "grant_type": "client_credentials",
                "client_id": client_id,
                "client_secret": client_secret,
                "scope": scope,
            },
        )
