"""Microsoft Entra ID v2.0 endpoints: discovery, signing keys and /token.

WNS and Key Vault tokens are opaque (those services are played here too); tokens for the push
backend's own API are RS256 JWTs, as Entra ID issues them, for users of the Windows app
(password grant) and for backends (client credentials with an app role).
"""

from __future__ import annotations

import hmac
from datetime import UTC, datetime
from urllib.parse import urlsplit

from aiohttp import web

from . import assertion, ids
from .config import (
    API_APP_ID_URI,
    API_BACKEND_ROLE,
    API_CLIENT_ID,
    API_DEVICE_SCOPE,
    DEVICE_CLIENT_ID,
    KNOWN_RESOURCES,
    USER_PASSWORD,
)
from .signing import object_id
from .state import SandboxState, state_of

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
_RESERVED_SCOPES = {"openid", "profile", "offline_access"}
_NO_STORE = {"Cache-Control": "no-store, no-cache", "Pragma": "no-cache"}
# Entra ID access tokens live 60-90 minutes.
API_TOKEN_LIFETIME = 3600


class EntraError(Exception):
    def __init__(self, status: int, error: str, code: int, message: str) -> None:
        super().__init__(message)
        self.status, self.error, self.code, self.message = status, error, code, message

    def response(self) -> web.Response:
        """The error body Entra ID sends: error, a description with trace lines, codes and ids."""
        trace, correlation = ids.trace_id(), ids.trace_id()
        stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
        body = {
            "error": self.error,
            "error_description": f"AADSTS{self.code}: {self.message}\r\nTrace ID: {trace}\r\n"
            f"Correlation ID: {correlation}\r\nTimestamp: {stamp}",
            "error_codes": [self.code],
            "timestamp": stamp,
            "trace_id": trace,
            "correlation_id": correlation,
            "error_uri": f"https://login.microsoftonline.com/error?code={self.code}",
        }
        return web.json_response(body, status=self.status, headers=_NO_STORE)


def _unknown_tenant(tenant: str, error: str) -> EntraError:
    return EntraError(
        400,
        error,
        90002,
        f"Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing "
        "into the correct cloud.",
    )


def _missing(parameter: str) -> EntraError:
    return EntraError(
        400, "invalid_request", 900144, f"The request body must contain the following parameter: '{parameter}'."
    )


async def openid_configuration(request: web.Request) -> web.Response:
    state = state_of(request)
    tenant = request.match_info["tenant"]
    if tenant != state.config.tenant_id:
        return _unknown_tenant(tenant, "invalid_tenant").response()
    base = f"https://{request.host}/{tenant}"
    return web.json_response(
        {
            "token_endpoint": f"{base}/oauth2/v2.0/token",
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
            "jwks_uri": f"{base}/discovery/v2.0/keys",
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": f"{base}/v2.0",
            "request_uri_parameter_supported": False,
            "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
            "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
            "end_session_endpoint": f"{base}/oauth2/v2.0/logout",
            "tenant_region_scope": None,
            "cloud_instance_name": "microsoftonline.com",
        }
    )


async def jwks(request: web.Request) -> web.Response:
    state = state_of(request)
    if request.match_info["tenant"] != state.config.tenant_id:
        return _unknown_tenant(request.match_info["tenant"], "invalid_tenant").response()
    state.stats.jwks_requests += 1
    return web.json_response(state.api_tokens.jwks())


async def token(request: web.Request) -> web.Response:
    state = state_of(request)
    form = await request.post()
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    try:
        if fields.get("grant_type") == "password":
            body = _user_token(request, state, fields)
        else:
            resource, client_id, credential = _authorize(request, state, fields)
            body = _app_token(state, client_id) if resource == API_APP_ID_URI else None
    except EntraError as exc:
        state.stats.token_requests["rejected"] += 1
        return exc.response()
    state.stats.token_requests["issued"] += 1
    if body is not None:
        return web.json_response(body, headers=_NO_STORE)
    lifetime = state.config.token_lifetime
    access_token, info = state.tokens.issue(resource, client_id, credential, lifetime)
    if state.config.expires_in_as_string:
        # The shape of Microsoft's documented WNS token response: every number is a string.
        body: dict[str, str | int] = {
            "token_type": "Bearer",
            "expires_in": str(lifetime),
            "ext_expires_in": str(lifetime),
            "expires_on": str(int(info.expires_at)),
            "not_before": str(int(info.issued_at)),
            "access_token": access_token,
        }
    else:
        body = {
            "token_type": "Bearer",
            "expires_in": lifetime,
            "ext_expires_in": lifetime,
            "access_token": access_token,
        }
    return web.json_response(body, headers=_NO_STORE)


def _authorize(request: web.Request, state: SandboxState, fields: dict[str, str]) -> tuple[str, str, str]:
    """Return (resource, client id, credential kind) or raise the error Entra ID would send."""
    config = state.config
    tenant = request.match_info["tenant"]
    if tenant != config.tenant_id:
        raise _unknown_tenant(tenant, "invalid_request")
    grant_type = fields.get("grant_type")
    state.stats.token_requests[f"grant:{grant_type or 'missing'}"] += 1
    if not grant_type:
        raise _missing("grant_type")
    if grant_type != "client_credentials":
        raise EntraError(
            400, "unsupported_grant_type", 70003, f"The app requested an unsupported grant type '{grant_type}'."
        )
    client_id = fields.get("client_id")
    if not client_id:
        raise _missing("client_id")
    if client_id != config.client_id:
        raise EntraError(
            400,
            "unauthorized_client",
            700016,
            f"Application with identifier '{client_id}' was not found in the directory '{tenant}'. This can happen "
            "if the application has not been installed by the administrator of the tenant or consented to by any "
            "user in the tenant. You may have sent your authentication request to the wrong tenant.",
        )
    credential = _authenticate(request, state, fields, client_id)
    state.stats.token_requests[f"credential:{credential}"] += 1
    scope = fields.get("scope")
    if not scope:
        raise _missing("scope")
    return _resource_for(scope, tenant), client_id, credential


def _authenticate(request: web.Request, state: SandboxState, fields: dict[str, str], client_id: str) -> str:
    assertion_type, client_assertion = fields.get("client_assertion_type"), fields.get("client_assertion")
    if assertion_type or client_assertion:
        if assertion_type != JWT_BEARER or not client_assertion:
            field = "client_assertion" if assertion_type == JWT_BEARER else "client_assertion_type"
            raise EntraError(
                400, "invalid_request", 90014, f"The required field '{field}' is missing from the credential."
            )
        try:
            assertion.verify(client_assertion, client_id, _audiences(request, state), state.certificates)
        except assertion.AssertionRejected as exc:
            raise EntraError(401, "invalid_client", exc.code, exc.message) from exc
        return "client_assertion"
    secret = fields.get("client_secret")
    if secret is None:
        raise EntraError(
            401,
            "invalid_client",
            7000218,
            "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
        )
    if not hmac.compare_digest(secret.encode(), state.config.client_secret.encode()):
        raise EntraError(
            401,
            "invalid_client",
            7000215,
            "Invalid client secret provided. Ensure the secret being sent in the request is the client secret "
            f"value, not the client secret ID, for a secret added to app '{client_id}'.",
        )
    return "client_secret"


def _audiences(request: web.Request, state: SandboxState) -> set[str]:
    tenant = request.match_info["tenant"]
    hosts = {request.host, urlsplit(state.public_url).netloc}
    paths = (f"/{tenant}/oauth2/v2.0/token", f"/{tenant}/oauth2/token")
    return {f"https://{host}{path}" for host in hosts for path in paths}


def _resource_for(scope: str, tenant: str) -> str:
    scopes = [s for s in scope.split() if s not in _RESERVED_SCOPES]
    if len(scopes) != 1:
        raise EntraError(
            400,
            "invalid_scope",
            70011,
            f"The provided value for the input parameter 'scope' isn't valid. The scope {scope} isn't valid.",
        )
    # The HTTP sample in the Windows App SDK push quickstart sends ".default/" with a trailing slash.
    value = scopes[0].removesuffix("/") if scopes[0].endswith("/.default/") else scopes[0]
    if not value.endswith("/.default"):
        raise EntraError(
            400,
            "invalid_scope",
            1002012,
            f"The provided value for scope {value} is not valid. Client credential flows must have a scope value "
            "with /.default suffixed to the resource identifier (application ID URI).",
        )
    resource = value.removesuffix("/.default").rstrip("/")
    if resource not in (*KNOWN_RESOURCES, API_APP_ID_URI):
        raise EntraError(
            400,
            "invalid_resource",
            500011,
            f"The resource principal named {resource} was not found in the tenant named {tenant}. This can happen "
            "if the application has not been installed by the administrator of the tenant or consented to by any "
            "user in the tenant. You might have sent your authentication request to the wrong tenant.",
        )
    return resource


def _api_token_body(state: SandboxState, claims: dict[str, object], scope: str) -> dict[str, object]:
    config = state.config
    access_token = state.api_tokens.issue(state.public_url, config.tenant_id, API_CLIENT_ID, claims, API_TOKEN_LIFETIME)
    return {
        "token_type": "Bearer",
        "scope": scope,
        "expires_in": API_TOKEN_LIFETIME,
        "ext_expires_in": API_TOKEN_LIFETIME,
        "access_token": access_token,
    }


def _app_token(state: SandboxState, client_id: str) -> dict[str, object]:
    """An app-only token for the API: the backend's service principal with the API's app role."""
    principal = object_id(state.config.tenant_id, f"service-principal/{client_id}")
    claims = {"oid": principal, "sub": principal, "azp": client_id, "azpacr": "1", "idtyp": "app"}
    return _api_token_body(state, claims | {"roles": [API_BACKEND_ROLE]}, f"{API_APP_ID_URI}/.default")


def _user_token(request: web.Request, state: SandboxState, fields: dict[str, str]) -> dict[str, object]:
    """The resource owner password grant: a delegated token for a test user of the Windows app."""
    tenant = request.match_info["tenant"]
    if tenant != state.config.tenant_id:
        raise _unknown_tenant(tenant, "invalid_request")
    state.stats.token_requests["grant:password"] += 1
    for name in ("client_id", "username", "password", "scope"):
        if not fields.get(name):
            raise _missing(name)
    if fields["client_id"] != DEVICE_CLIENT_ID:
        raise EntraError(
            400,
            "unauthorized_client",
            700016,
            f"Application with identifier '{fields['client_id']}' was not found in the directory '{tenant}'.",
        )
    if not hmac.compare_digest(fields["password"].encode(), USER_PASSWORD.encode()):
        raise EntraError(
            400, "invalid_grant", 50126, "Error validating credentials due to invalid username or password."
        )
    wanted = f"{API_APP_ID_URI}/{API_DEVICE_SCOPE}"
    scopes = [s for s in fields["scope"].split() if s not in _RESERVED_SCOPES]
    if scopes != [wanted]:
        raise EntraError(
            400,
            "invalid_scope",
            70011,
            f"The provided value for the input parameter 'scope' isn't valid. The scope {fields['scope']} isn't "
            f"valid; the sandbox API exposes {wanted}.",
        )
    username = fields["username"].strip().lower()
    oid = object_id(tenant, f"user/{username}")
    claims = {
        "oid": oid,
        "sub": object_id(tenant, f"pairwise/{DEVICE_CLIENT_ID}/{oid}"),
        "scp": API_DEVICE_SCOPE,
        "azp": DEVICE_CLIENT_ID,
        "azpacr": "0",
        "name": username,
        "preferred_username": username,
    }
    return _api_token_body(state, claims, wanted)
